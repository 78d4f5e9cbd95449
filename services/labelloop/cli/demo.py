"""`labelloop demo`: the default preset and random selection side by side on scikit-learn's digits.

The five services run as local processes; two experiments share them, the data, the first labeled
set (the preset's label-free typical start, same seed) and the model: the image preset of
`labelloop.presets` (a linear probe on frozen ImageNet MobileNetV2 features). One selects with the
preset's strategy (budget-aware, diverse batches), the other at random. Writes into the output folder:
data/ (PNG images + manifest), store/, logs/, rounds.json (the default strategy's rounds),
random_rounds.json (the random run's, same format) and learning_curve.png (both curves).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import threading
import time
from pathlib import Path
from typing import Any

from labelloop import presets
from labelloop.cli.local import LocalCluster, default_ports, free_ports
from labelloop.cli.progress import format_table, watch_with_bars
from labelloop.client import LabelLoopClient
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES
from labelloop.core.config import StorageConfig
from labelloop.v1 import experiments_pb2

DATASET = "digits"
EXPERIMENT = "digits-default"
RANDOM_EXPERIMENT = "digits-random"
MARKER = ".labelloop-demo"
# The ground truth's column, as in cleanlab's reference manifests (image_path,label).
LABEL_COLUMN = "label"
# The demo's model and strategy are the image preset's, nothing hidden: see labelloop/presets.py.
PRESET = presets.preset_for("image")
# Digits are 8x8: written as 32 px PNGs (blocky, nearest-neighbour); the backbone resizes them to the
# preset's image size.
DEMO_IMAGE_SIZE = 32
OUTPUTS = ("data", "store", "logs", "rounds.json", "random_rounds.json", "learning_curve.png")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """`labelloop demo`'s options (the CLI's parser calls this)."""
    parser.add_argument(
        "--output", default="demo-output", help="folder for the data, store, logs and results"
    )
    parser.add_argument("--rounds", type=int, default=15, help="selection rounds per experiment")
    parser.add_argument("--batch-size", type=int, default=20, help="examples labeled per round")
    parser.add_argument(
        "--initial-count",
        type=int,
        default=0,
        help=f"first labeled set (default: the preset's, {PRESET.initial_per_class_factor} per class)",
    )
    parser.add_argument("--strategy", default=PRESET.strategy, help="the strategy compared with random")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split, first set and training")
    parser.add_argument("--free-ports", action="store_true", help="pick free ports instead of 50051-50055")


# What the demo imports beyond the base install: the trainer's stack and the plot's (`labelloop[demo]`).
DEMO_MODULES = ("autogluon.multimodal", "torch", "matplotlib")


def require_demo_extra() -> None:
    """Says before the first round, not after the last, when the trainer or the plot cannot run here."""
    missing = [name for name in DEMO_MODULES if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"labelloop demo needs {', '.join(missing)}: pip install 'labelloop[demo]' "
            "(or `make venv` in a checkout)"
        )


def prepare_output(output: Path) -> None:
    """Creates the output folder; a previous demo's output there is replaced, anything else refused."""
    if output.exists() and any(output.iterdir()) and not (output / MARKER).exists():
        raise SystemExit(
            f"{output} is not empty and was not written by `labelloop demo`: choose another --output"
        )
    for name in OUTPUTS:
        path = output / name
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()
    output.mkdir(parents=True, exist_ok=True)
    (output / MARKER).write_text("written by labelloop demo\n")


def write_manifest(folder: Path) -> Path:
    from labelloop.sample_data import write_digits_images

    return write_digits_images(folder, size=DEMO_IMAGE_SIZE)


def plot_learning_curve(
    rows: list[dict[str, Any]], path: Path, title: str, random_rows: list[dict[str, Any]] | None = None
) -> None:
    """Test accuracy against labeled examples; with random_rows, the random run's curve beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    curves = [("default strategy" if random_rows is not None else None, rows, "tab:blue")]
    if random_rows is not None:
        curves.append(("random selection", random_rows, "tab:gray"))
    for label, run, color in curves:
        axes.plot([r["labeled"] for r in run], [r["test_accuracy"] for r in run], marker="o", color=color,
                  label=label)  # fmt: skip
    axes.set_xlabel("labeled examples")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if random_rows is not None:
        axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def labels_to_reach(rows: list[dict[str, Any]], target: float) -> float | None:
    """Labeled examples where the run's curve (linearly interpolated) first reaches target; None if never."""
    for i, row in enumerate(rows):
        if row["test_accuracy"] >= target - 1e-12:
            if i == 0:
                return float(row["labeled"])
            before = rows[i - 1]
            rise = row["test_accuracy"] - before["test_accuracy"]
            return float(
                before["labeled"]
                + (row["labeled"] - before["labeled"]) * (target - before["test_accuracy"]) / rise
            )
    return None


def comparison(default_rows: list[dict[str, Any]], random_rows: list[dict[str, Any]]) -> str:
    """How many labels random needed for the default run's final accuracy, and the other way round."""
    final, labeled = default_rows[-1]["test_accuracy"], default_rows[-1]["labeled"]
    needed = labels_to_reach(random_rows, final)
    last = random_rows[-1]
    if needed is None:
        lines = [
            f"random selection did not reach the default strategy's final accuracy {final:.3f} "
            f"({labeled} labels) within {last['labeled']} labels (it ended at {last['test_accuracy']:.3f})"
        ]
    else:
        lines = [
            f"random selection needed {needed:.0f} labels to reach the default strategy's final accuracy "
            f"{final:.3f} ({labeled} labels)"
        ]
    random_final = last["test_accuracy"]
    ours = labels_to_reach(default_rows, random_final)
    if ours is not None:
        lines.append(
            f"the default strategy reached random's final accuracy {random_final:.3f} "
            f"({last['labeled']} labels) with {ours:.0f} labels: {last['labeled'] / ours:.2f}x fewer"
        )
    return "\n".join(lines)


def wait_past_first_snapshot(client: LabelLoopClient, experiment: str, poll_seconds: float = 1.0) -> None:
    """Returns once the experiment's first round has left the snapshot stage, where the first labeled set
    is chosen on the pool's pretrained embeddings: the second run then finds them cached instead of
    computing the same embeddings beside the first. Polls (a watch stream can be cut while the
    embeddings take minutes)."""
    first_stages = (experiments_pb2.ROUND_STAGE_UNSPECIFIED, experiments_pb2.ROUND_STAGE_SNAPSHOT)
    while True:
        if client.get(experiment).state in TERMINAL_EXPERIMENT_STATES:
            return
        rounds = client.list_rounds(experiment)
        if len(rounds) > 1 or (rounds and rounds[0].stage not in first_stages):
            return
        time.sleep(poll_seconds)


def run_demo(args: argparse.Namespace) -> int:
    require_demo_extra()
    started = time.monotonic()
    output = Path(args.output).absolute()
    prepare_output(output)
    print(f"writing digits images to {output / 'data'}", flush=True)
    manifest = write_manifest(output / "data")
    ports = free_ports() if args.free_ports else default_ports()
    cluster = LocalCluster(
        storage=StorageConfig(backend="local", root=output / "store"),
        log_dir=output / "logs",
        ports=ports,
        import_roots=[output / "data"],
    )
    print(f"starting the five services (logs in {output / 'logs'})", flush=True)
    with cluster, LabelLoopClient(cluster.address("controller"), cluster.address("store")) as client:
        dataset = client.create_dataset(
            DATASET,
            str(manifest),
            image_column="image_path",
            label_column=LABEL_COLUMN,
            test_fraction=0.3,
            seed=args.seed,
        )
        print(
            f"dataset {dataset.name}: {dataset.pool_count} pool, {dataset.test_count} test images", flush=True
        )
        # Same data, first labels (the preset's typical start, same seed), model and seed: only the
        # selection differs. Everything not given here comes from the image preset.
        common: dict[str, Any] = {
            "dataset": DATASET,
            "preset": PRESET.modality,
            "batch_size": args.batch_size,
            "max_rounds": args.rounds,
            "initial_count": args.initial_count or PRESET.initial_count(len(dataset.classes)),
            "seed": args.seed,
            "start": True,
        }
        print(
            f"model: {PRESET.summary}; first {common['initial_count']} labels: {PRESET.initial_selection} "
            f"examples; {args.strategy} with {PRESET.batch_method} batches vs random",
            flush=True,
        )
        client.create_experiment(EXPERIMENT, strategy=args.strategy, **common)
        print("embedding the pool with the frozen backbone once (both runs reuse it)", flush=True)
        wait_past_first_snapshot(client, EXPERIMENT)
        client.create_experiment(RANDOM_EXPERIMENT, strategy="random", batch_method="lowest_scores", **common)
        random_final: dict[str, experiments_pb2.Experiment] = {}
        waiter = threading.Thread(
            target=lambda: random_final.setdefault("x", client.wait(RANDOM_EXPERIMENT, timeout=3600)),
            daemon=True,
        )
        waiter.start()
        final = watch_with_bars(client, EXPERIMENT)
        waiter.join()
        rows = client.rounds_table(EXPERIMENT)
        random_rows = client.rounds_table(RANDOM_EXPERIMENT)
    (output / "rounds.json").write_text(json.dumps(rows, indent=1))
    (output / "random_rounds.json").write_text(json.dumps(random_rows, indent=1))
    plot_learning_curve(
        rows, output / "learning_curve.png", f"{args.strategy} vs random on digits", random_rows=random_rows
    )
    print(f"\n{args.strategy} ({PRESET.batch_method} batches):")
    print(format_table(rows))
    print("\nrandom selection:")
    print(format_table(random_rows))
    print()
    print(comparison(rows, random_rows))
    print(
        f"wrote {output / 'rounds.json'}, {output / 'random_rounds.json'} and {output / 'learning_curve.png'}"
    )
    print(f"total {time.monotonic() - started:.0f}s")
    failed = [
        f"{name}: {exp.status_message if exp is not None else 'no result'}"
        for name, exp in ((EXPERIMENT, final), (RANDOM_EXPERIMENT, random_final.get("x")))
        if exp is None or exp.state != experiments_pb2.EXPERIMENT_STATE_SUCCEEDED
    ]
    if failed:
        print(f"an experiment did not succeed: {'; '.join(failed)}", file=sys.stderr)
        return 1
    return 0
