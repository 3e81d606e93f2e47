"""Osiris runtime: runs compiled manifests on the host."""
