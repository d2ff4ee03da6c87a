"""Self-contained bundles of one model version: what a container or a fresh virtualenv serves."""
