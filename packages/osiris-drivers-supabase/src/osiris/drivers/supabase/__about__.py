"""Version of the osiris-drivers-supabase distribution."""

__version__ = "0.4.0"
