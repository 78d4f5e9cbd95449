"""Trainer service: fits AutoGluon MultiModalPredictor on snapshots and predicts class probabilities."""
