"""Training pipeline: one module per DVC stage, each a thin main() over pure functions."""
