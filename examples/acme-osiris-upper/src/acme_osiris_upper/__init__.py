"""acme-osiris-upper: an example third-party Osiris component (`acme.upper`)."""

__version__ = "0.1.0"
