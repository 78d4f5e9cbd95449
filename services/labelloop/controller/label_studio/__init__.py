"""The connector to Label Studio (label-studio-sdk): projects, tasks with the round's predictions,
annotations taken back by reconciliation, and the webhook endpoint that wakes it early.

The labeler plug-in (labelers/label_studio.py) drives it round by round; nothing here keeps state
of its own that a restart could lose: Label Studio's tasks and annotations, and the experiment's
annotation log, are the records.
"""
