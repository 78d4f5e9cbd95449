"""Batch selectors as plug-ins: base.py says what one is, one file per method, and registry.py maps
the API's BatchMethod enum to them."""

from labelloop.selector.batch.registry import BATCH_SELECTORS, batch_selector_for

__all__ = ["BATCH_SELECTORS", "batch_selector_for"]
