"""Osiris compiler: OML pipelines to deterministic, fingerprinted manifests."""
