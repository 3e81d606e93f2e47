"""Version of the osiris-core distribution."""

__version__ = "0.4.0"
