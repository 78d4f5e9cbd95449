"""Selector service: picks the next batch to label with a plug-in batch method, lowest scores first by
default, deterministically."""
