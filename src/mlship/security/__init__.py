"""Security: keys, signed artifacts."""
