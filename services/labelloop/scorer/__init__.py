"""Scorer service: ranks examples for labeling with plug-in strategies, pools read chunk by chunk."""
