"""Serving: a FastAPI app that validates requests against the model's signature."""
