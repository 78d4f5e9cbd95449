"""The dashboard's learning curve as a PNG, from the same metrics, read from a Prometheus server.

    python -m tests.observability.learning_curve --prometheus http://127.0.0.1:9090 \\
        --experiment digits-activelab --experiment digits-random --output learning-curve.png

One line per experiment: labelloop_round_labeled_examples (x) against labelloop_round_test_accuracy (y),
joined on (experiment, round) exactly like the dashboard's XY chart.
"""

from __future__ import annotations

import argparse
import json
import urllib.parse
import urllib.request
from collections.abc import Sequence
from pathlib import Path

Curve = list[tuple[int, float, float]]  # (round, labeled examples, test accuracy), by round


def query(prometheus: str, expr: str) -> list[dict]:
    url = f"{prometheus.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.load(reply)
    if body.get("status") != "success":
        raise RuntimeError(f"{expr}: {body}")
    return body["data"]["result"]


def learning_curves(prometheus: str, experiments: Sequence[str], lookback: str = "") -> dict[str, Curve]:
    """{experiment: [(round, labeled, accuracy), ...]} for rounds that have both numbers.

    lookback (e.g. "1h") reads the last value within that window, for services that have stopped.
    """
    selector = "|".join(experiments)
    per_metric = {}
    for metric in ("labelloop_round_labeled_examples", "labelloop_round_test_accuracy"):
        series = f'{metric}{{experiment=~"{selector}"}}'
        if lookback:
            series = f"max_over_time({series}[{lookback}])"
        samples = query(prometheus, f"max by (experiment, round) ({series})")
        per_metric[metric] = {
            (s["metric"]["experiment"], int(s["metric"]["round"])): float(s["value"][1]) for s in samples
        }
    labeled, accuracy = per_metric.values()
    curves: dict[str, Curve] = {experiment: [] for experiment in experiments}
    for key in sorted(labeled.keys() & accuracy.keys()):
        curves[key[0]].append((key[1], labeled[key], accuracy[key]))
    return curves


def render(curves: dict[str, Curve], output: Path, title: str = "Learning curve") -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4.5), dpi=120)
    for experiment, points in curves.items():
        if points:
            axes.plot([p[1] for p in points], [p[2] for p in points], marker="o", label=experiment)
    axes.set_xlabel("labeled examples")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(alpha=0.3)
    axes.legend()
    figure.tight_layout()
    output.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(output)
    plt.close(figure)
    return output


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--prometheus", required=True, help="e.g. http://127.0.0.1:9090")
    parser.add_argument("--experiment", action="append", required=True, help="experiment id (repeatable)")
    parser.add_argument("--output", type=Path, default=Path("learning-curve.png"))
    parser.add_argument("--lookback", default="", help="e.g. 1h: include services that have stopped")
    args = parser.parse_args(argv)
    curves = learning_curves(args.prometheus, args.experiment, args.lookback)
    print(render(curves, args.output))


if __name__ == "__main__":
    main()
