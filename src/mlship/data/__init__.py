"""Data in: reading sources, checking them against the declared schema, versioning the result."""
