"""SQL drivers for Osiris: MySQL extraction and DuckDB processing and writing."""
