"""schemas: see README.md."""
