"""Version of the osiris-compiler distribution."""

__version__ = "0.4.0"
