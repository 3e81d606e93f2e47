"""Component specs of osiris-drivers-supabase (package data; importing this loads no driver)."""
