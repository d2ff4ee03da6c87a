"""Where everything a step produces is recorded: metadata (SQL) and artifacts (content-addressed files)."""
