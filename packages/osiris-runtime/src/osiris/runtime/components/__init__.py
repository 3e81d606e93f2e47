"""Component specs of the built-in filesystem drivers (package data; no driver imported)."""
