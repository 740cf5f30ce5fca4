"""streams: see README.md."""
