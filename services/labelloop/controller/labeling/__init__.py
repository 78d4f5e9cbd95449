"""LabelingService: a round's batch handed to people as leased tasks, their labels taken back into the
annotation log, and what comes out of labeling (consensus reports, exports)."""
