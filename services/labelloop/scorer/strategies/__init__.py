"""Scoring strategies as plug-ins: base.py says what a strategy is, one file per strategy, and
registry.py maps the API's Strategy enum to them."""

from labelloop.scorer.strategies.registry import STRATEGIES, strategy_for, strategy_name

__all__ = ["STRATEGIES", "strategy_for", "strategy_name"]
