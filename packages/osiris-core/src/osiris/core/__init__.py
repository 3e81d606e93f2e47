"""Osiris core: types, discovery, fingerprints, errors and the CLI root shared by every package."""
