"""Version of the osiris-core distribution."""

__version__ = "0.3.0"
