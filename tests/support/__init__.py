"""Test support code (not shipped in any package)."""
