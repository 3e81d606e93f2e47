"""Version of the osiris-drivers-sql distribution."""

__version__ = "0.4.0"
