"""Clients of ``mlship server``: the same repositories as the local store, over HTTP."""
