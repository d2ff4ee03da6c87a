"""Where a step's outputs are recorded: metadata (SQL) and artifacts (content-addressed files)."""
