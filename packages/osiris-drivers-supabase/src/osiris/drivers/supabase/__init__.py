"""Supabase (PostgreSQL) drivers for Osiris."""
