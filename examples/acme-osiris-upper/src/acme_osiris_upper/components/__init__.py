"""The spec files of the components this package provides (read by Osiris without importing the driver)."""
