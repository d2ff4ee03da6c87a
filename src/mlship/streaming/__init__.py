"""Running a stream: consume events, score them with a deployment's routes, write predictions."""
