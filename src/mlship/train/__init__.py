"""Training: the model catalog, metrics, cross-validation and the run that ties them together."""
