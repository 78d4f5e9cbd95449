"""Just enough of PromQL to list the metric names an expression reads.

Not a parser: a tokenizer that drops strings, label matchers, ranges, numbers and durations,
Grafana variables, keywords and the label lists of by/without/on/ignoring/group_*, and calls every
identifier followed by "(" a function. What is left are metric names.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Functions and aggregation operators of PromQL (Prometheus 2.x), to catch typos in a dashboard.
_FUNCTION_NAMES = """
    abs absent absent_over_time avg avg_over_time bottomk ceil changes clamp clamp_max clamp_min count
    count_over_time count_values day_of_month day_of_week day_of_year days_in_month delta deriv exp
    floor group histogram_quantile holt_winters hour idelta increase irate label_join label_replace
    last_over_time ln log10 log2 max max_over_time min min_over_time minute month predict_linear
    present_over_time quantile quantile_over_time rate resets round scalar sgn sort sort_desc sqrt
    stddev stddev_over_time stdvar stdvar_over_time sum sum_over_time time timestamp topk vector year
    acos acosh asin asinh atan atanh cos cosh deg pi rad sin sinh tan tanh
"""
FUNCTIONS = frozenset(_FUNCTION_NAMES.split())
# Keywords whose parenthesised argument is a list of label names, not an expression.
LABEL_LIST_KEYWORDS = frozenset({"by", "without", "on", "ignoring", "group_left", "group_right"})
KEYWORDS = frozenset({"and", "or", "unless", "bool", "offset", "atan2", "inf", "nan", *LABEL_LIST_KEYWORDS})

_GRAFANA_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+|\[\[\w+\]\]")
_TOKEN = re.compile(
    r"""
    (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)
    |(?P<matchers>\{[^}]*\})
    |(?P<range>\[[^\]]*\])
    |(?P<number>(?:0x[0-9a-fA-F]+|\d+(?:\.\d*)?(?:[eE][+-]?\d+)?|\.\d+)(?:[smhdwy]|ms)*)
    |(?P<identifier>[a-zA-Z_:][a-zA-Z0-9_:]*)
    |(?P<open>\()
    |(?P<close>\))
    |(?P<space>\s+)
    |(?P<other>==|!=|<=|>=|=~|!~|[-+*/%^<>,@])
    """,
    re.VERBOSE,
)


@dataclass
class Expression:
    metrics: set[str] = field(default_factory=set)
    functions: set[str] = field(default_factory=set)


def analyse(expr: str) -> Expression:
    """The metric names and functions in a PromQL expression (which may hold Grafana variables)."""
    text = _GRAFANA_VARIABLE.sub("0", expr)
    tokens: list[tuple[str, str]] = []
    position = 0
    while position < len(text):
        match = _TOKEN.match(text, position)
        if match is None:
            raise ValueError(f"cannot tokenize {expr!r} at {text[position:]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append((kind, match.group()))
        position = match.end()

    result = Expression()
    index = 0
    while index < len(tokens):
        kind, value = tokens[index]
        following = tokens[index + 1][0] if index + 1 < len(tokens) else ""
        if following == "identifier" and tokens[index + 1][1] in ("by", "without"):
            following = "open"  # "sum by (label) (expr)": an aggregation with its grouping first
        if kind == "identifier":
            if value in LABEL_LIST_KEYWORDS and following == "open":
                index = _skip_parentheses(tokens, index + 1)
                continue
            if value in KEYWORDS:
                pass
            elif following == "open":
                result.functions.add(value)
            else:
                result.metrics.add(value)
        index += 1
    return result


def _skip_parentheses(tokens: list[tuple[str, str]], start: int) -> int:
    """Index just past the ")" closing the "(" at `start`."""
    depth = 0
    for index in range(start, len(tokens)):
        if tokens[index][0] == "open":
            depth += 1
        elif tokens[index][0] == "close":
            depth -= 1
            if depth == 0:
                return index + 1
    raise ValueError("unbalanced parentheses")


def base_name(name: str, histograms: set[str]) -> str:
    """Maps a histogram series (x_bucket, x_sum, x_count) to its family name x."""
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in histograms:
            return name.removesuffix(suffix)
    return name
