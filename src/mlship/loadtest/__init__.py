"""An open-loop HTTP load generator: requests at a constant rate whatever the server does, so a
stalled or failing server shows as latency and errors, and what was killed while it ran."""
