"""Channels to a Supabase project: `postgres` (psycopg2 + bulk COPY), `http` (REST), `http_sql` (DDL)."""
