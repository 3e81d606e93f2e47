"""Component specs of osiris-drivers-sql (package data; importing this loads no driver)."""
