"""Version of the osiris-remote distribution."""

__version__ = "0.4.0"
