"""Built-in filesystem drivers: CSV in, CSV and Parquet out."""
