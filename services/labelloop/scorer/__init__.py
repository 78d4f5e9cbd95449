"""Scorer service: ranks examples for labeling (ActiveLab and baselines), pools read chunk by chunk."""
