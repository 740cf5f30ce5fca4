"""producers: see README.md."""
