"""Osiris remote: run manifests inside sandboxes with the same runtime as the host."""
