"""The model registry: versions with signatures, metrics, lineage and verified artifacts."""
