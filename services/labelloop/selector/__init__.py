"""Selector service: picks the next batch to label, lowest scores first, deterministically."""
