"""``mlship server``: the metadata and artifact stores of a workspace, shared over HTTP."""
