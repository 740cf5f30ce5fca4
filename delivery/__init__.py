"""delivery: see README.md."""
