"""Version of the osiris-runtime distribution."""

__version__ = "0.4.0"
