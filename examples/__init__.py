"""Runnable example projects; each has a spec and a deterministic data generator."""
