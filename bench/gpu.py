"""`python -m bench.gpu --output docs [--devices cuda,cpu]`: per-round fit and predict seconds on a GPU
against the same experiment on the CPU (issue 14, item 6; `make bench-gpu`, `make bench-gpu-cpu`).

One active-learning experiment on digit images and one on Fashion-MNIST, through the in-process
reference loop (bench/loop.py), so the model code is the trainer's own (`hparams.fit_args`); per device
only `num_gpus` differs (1 on `cuda`, 0 on `cpu`), as a TrainerConfig would set it.

What it measures: the AutoGluon fine-tune path (TrainingMode FINE_TUNE: MobileNetV2 from ImageNet at the
image preset's 96 px, every weight trained), which is where a GPU can help. The image preset itself
trains the linear probe and never switches to fine-tuning (`presets.IMAGE.fine_tune_from_labels` is 0);
the probe's work (a MobileNetV2 forward pass per pool image, once per data set, then a scikit-learn
logistic regression) runs on the CPU in the trainer's code whatever the machine has, so a GPU cannot
change its rounds and they are not measured here.

The runs are the same experiment on every device: the random strategy picks each batch from a seeded
generator, so every round trains on the same labeled ids on both devices (the per-round
`selected_digest` shows it), and a fixed number of epochs with early stopping switched off
(`optim.patience` above the number of validation checks) makes every fit do the same work. Only the
arithmetic differs: AutoGluon's default 16-bit mixed precision on the GPU, float32 on the CPU
(`hparams.fit_args`; gpu.json records each), so test accuracies agree closely, not to the last digit.

Sizes: digit images (scikit-learn's 1,797 as 32 px PNGs: 1,257 pool, 540 test) and the first 4,000
Fashion-MNIST training images (2,800 pool, 1,200 test); 20 initial labels (2 per class), then 4 rounds of
50 (20 to 220 labels, 5 fits and 5 predictions of pool and test per data set); 20 epochs a fit
(AutoGluon's own max_epochs). The CPU half took 10.5 minutes on 2 shared cores (1 torch thread). On the
workplace's H200 machine the GPU half should take 2-5 minutes with the wheels' install and the imports
(not measured yet: estimated from the CPU half's per-fit overhead of about 2 s and the image decoding
in the loader, which stays on the CPU), well inside the device tool's 10 minutes per command.
`--quick`: 600 images of each, 2 rounds, 3 epochs (about a minute on 2 cores: a check that it runs);
`--rows`, `--rounds`, `--epochs` and `--datasets` override single sizes.

Writes docs/benchmarks/gpu.json, merged per device (the CPU half measured on one machine and the GPU
half on another live in one file, each with its own machine block), then renders docs/benchmarks.md
again from results.json and the side files (bench.report.refresh_side_files). With `cuda` asked for
and no CUDA device visible to torch it exits with status 2 and measures nothing.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

DEVICES = ("cuda", "cpu")
NO_CUDA_STATUS = 2
NO_CUDA_MESSAGE = (
    "no CUDA device visible to torch (torch.cuda.is_available() is False); "
    "run with --devices cpu for the CPU half"
)
GPU_FILE = "gpu.json"
SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Experiment:
    """One data set's active-learning run: the same on every device."""

    dataset: str  # one of bench.data.DATASETS with an image column
    rows: int  # the first rows of the data set (pool + test); 0: all
    test_fraction: float = 0.3
    per_class: int = 2  # initial labels per class
    batch_size: int = 50
    rounds: int = 4  # labeling rounds; rounds + 1 models are trained


@dataclass(frozen=True)
class Settings:
    """Everything that shapes the work of a run; a device's entry in gpu.json records it."""

    experiments: tuple[Experiment, ...]
    epochs: int = 20  # AutoGluon's own max_epochs
    strategy: str = "random"
    seed: int = 0
    hyperparameters: dict[str, str] = field(default_factory=dict)
    checkpoints: dict[str, str] = field(default_factory=dict)

    def trainer_config(self, device: str) -> dict[str, Any]:
        """The JobSpec config dict (hparams.config_to_dict's shape) of a fine-tune run on `device`."""
        return {
            "hyperparameters": dict(self.hyperparameters),
            "checkpoints": [{"key": k, "source": v} for k, v in self.checkpoints.items()],
            "num_gpus": 1 if device == "cuda" else 0,
            "mode": "fine_tune",
        }


def fine_tune_hyperparameters(epochs: int) -> dict[str, str]:
    """The image preset's model and image size, fine-tuned for exactly `epochs` epochs: AutoGluon checks
    the validation score twice an epoch, so a patience above 2 x epochs never stops a fit early."""
    from labelloop import presets
    from labelloop.trainer.hparams import PROBE_PREFIX

    preset = {k: v for k, v in presets.IMAGE.hyperparameters.items() if not k.startswith(PROBE_PREFIX)}
    return {**preset, "optim.max_epochs": str(epochs), "optim.patience": str(2 * epochs + 1)}


def settings_for(
    quick: bool, rounds: int = 0, seed: int = 0, *, rows: int = 0, epochs: int = 0, datasets: str = ""
) -> Settings:
    """The default or --quick settings, with any size given overriding its own (0 or "": the setting's)."""
    from labelloop import presets

    if quick:
        experiments: tuple[Experiment, ...] = (
            Experiment("digits_images", rows=600, rounds=2),
            Experiment("fashion_mnist", rows=600, rounds=2),
        )
    else:
        experiments = (Experiment("digits_images", rows=0), Experiment("fashion_mnist", rows=4000))
    epochs = epochs or (3 if quick else 20)
    if datasets:
        wanted = {d.strip() for d in datasets.split(",") if d.strip()}
        experiments = tuple(e for e in experiments if e.dataset in wanted)
        if not experiments:
            raise ValueError(
                f"no data set of {sorted(wanted)} here: use digits_images, fashion_mnist or both"
            )
    experiments = tuple(replace(e, rounds=rounds or e.rounds, rows=rows or e.rows) for e in experiments)
    return Settings(
        experiments,
        epochs=epochs,
        seed=seed,
        hyperparameters=fine_tune_hyperparameters(epochs),
        checkpoints=dict(presets.IMAGE.checkpoints),
    )


def check_devices(devices: list[str]) -> str | None:
    """None when every device asked for can run here, else the line to print before exiting."""
    unknown = [d for d in devices if d not in DEVICES]
    if unknown or not devices:
        return f"unknown devices {unknown or devices}: use one or more of {', '.join(DEVICES)}"
    if "cuda" in devices:
        import torch

        if not torch.cuda.is_available():
            return NO_CUDA_MESSAGE
    return None


def machine(device: str, command: str) -> dict[str, Any]:
    """What a device's figures were measured on: GPU name, CPUs, versions, command and date."""
    import importlib.metadata

    import torch

    from bench.report import _cpu_model, _meminfo

    info: dict[str, Any] = {
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU run)",
        "gpu_visible": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none",
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _meminfo("MemTotal"),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda or "none",
        "torch_threads": torch.get_num_threads(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "command": command,
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }
    for package in ("autogluon.multimodal", "timm", "lightning"):
        try:
            info[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[package] = "not installed"
    return info


def precision_of(settings: Settings, device: str, workdir: Path) -> str:
    """The training precision the trainer's fit_args leave AutoGluon on `device`."""
    from labelloop.core.storage import LocalStore
    from labelloop.trainer import hparams

    config = {**settings.trainer_config(device), "checkpoints": []}  # none to build for this question
    args = hparams.fit_args(
        config, n_labeled=1, image_column="image", store=LocalStore(workdir / "inprocess-store"),
        cache_dir=workdir / "cache",
    )  # fmt: skip
    return str(args.hyperparameters.get("env.precision", "16-mixed (AutoGluon's default)"))


def selected_digest(ids: list[str]) -> str:
    """A short fingerprint of a round's batch ("" for none: the last round labels nothing); equal on two
    devices in every round means the same labeled sets, since the first ones come from the seed alone."""
    return hashlib.sha256("\n".join(ids).encode()).hexdigest()[:12] if ids else ""


def run_device(device: str, settings: Settings, workdir: Path) -> dict[str, Any]:
    """Every experiment of `settings` on `device`: per-round seconds and accuracy, and a summary."""
    from bench.harness import Workspace, prepare_inprocess
    from bench.loop import autogluon_fitter, run_loop

    ws = Workspace(workdir)
    config = settings.trainer_config(device)
    out: dict[str, Any] = {}
    for experiment in settings.experiments:
        frames = prepare_inprocess(ws, experiment.dataset, experiment.rows, experiment.test_fraction)
        fitter = autogluon_fitter(config, frames.image_column, ws.local_store(), ws.cache_dir)
        started = time.perf_counter()
        rounds = run_loop(
            frames, fitter, strategy=settings.strategy, seed=settings.seed, per_class=experiment.per_class,
            batch_size=experiment.batch_size, rounds=experiment.rounds,
        )  # fmt: skip
        records = [
            {
                "number": r.number,
                "labeled": r.labeled,
                "fit_seconds": round(r.stage_seconds["fit"], 3),
                "predict_seconds": round(r.stage_seconds["predict"], 3),
                "test_accuracy": round(r.test_accuracy, 4),
                "selected_digest": selected_digest(r.selected),
            }
            for r in rounds
        ]
        out[experiment.dataset] = {
            "pool": len(frames.pool),
            "test": len(frames.test),
            "seconds": round(time.perf_counter() - started, 1),
            "rounds": records,
            "summary": summarise(records),
        }
        logging.info("%s on %s: %s", experiment.dataset, device, out[experiment.dataset]["summary"])
    return out


def summarise(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Round 0 apart (the device's first fit also pays lazy CUDA and cuDNN set-up), the median of the rest."""
    later = records[1:] or records
    return {
        "first_fit_seconds": records[0]["fit_seconds"],
        "first_predict_seconds": records[0]["predict_seconds"],
        "median_fit_seconds": round(statistics.median(r["fit_seconds"] for r in later), 3),
        "median_predict_seconds": round(statistics.median(r["predict_seconds"] for r in later), 3),
        "total_fit_seconds": round(sum(r["fit_seconds"] for r in records), 3),
        "total_predict_seconds": round(sum(r["predict_seconds"] for r in records), 3),
        "final_test_accuracy": records[-1]["test_accuracy"],
    }


def merge(path: Path, device: str, entry: dict[str, Any]) -> dict[str, Any]:
    """gpu.json with `device`'s entry replaced and every other device's kept as it was measured."""
    earlier = json.loads(path.read_text()) if path.exists() else {}
    devices = {**earlier.get("devices", {}), device: entry}
    merged = {"schema_version": SCHEMA_VERSION, "devices": {d: devices[d] for d in DEVICES if d in devices}}
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(merged, indent=1) + "\n")
    tmp.replace(path)
    return merged


def warm_up(device: str) -> None:
    """AutoGluon imported and (on cuda) the CUDA context made before any timing: the trainer's worker
    imports AutoGluon at start-up, so no round of a real experiment pays for either."""
    import autogluon.multimodal  # noqa: F401
    import torch

    if device == "cuda":
        torch.zeros(1, device="cuda").sum().item()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.gpu", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--output", default="docs", help="folder of benchmarks.md and benchmarks/gpu.json")
    parser.add_argument("--devices", default="cuda", help="comma-separated, in order: cuda, cpu or both")
    parser.add_argument("--rounds", type=int, default=0, help="labeling rounds per data set (default: 4)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="600 images per data set, 2 rounds, 3 epochs")
    parser.add_argument(
        "--rows", type=int, default=0, help="the first rows of each data set (0: the setting's)"
    )
    parser.add_argument("--epochs", type=int, default=0, help="epochs a fit (default: 20; --quick 3)")
    parser.add_argument(
        "--datasets", default="", help="comma-separated subset of digits_images,fashion_mnist"
    )
    parser.add_argument("--workdir", default="bench-output/gpu", help="data sets, store, checkpoints")
    parser.add_argument(
        "--prepare-only",
        action="store_true",
        help="write the data sets' PNGs and manifests under --workdir and stop (for a machine without "
        "the Fashion-MNIST package: carry {workdir}/data there)",
    )
    parser.add_argument(
        "--merge-from",
        default="",
        help="run nothing: take every device's entry of this gpu.json (e.g. the GPU half a device machine "
        "returned) into --output's gpu.json and render benchmarks.md again",
    )
    args = parser.parse_args(argv)
    path = Path(args.output) / "benchmarks" / GPU_FILE
    if args.merge_from:
        for device, entry in json.loads(Path(args.merge_from).read_text())["devices"].items():
            merge(path, device, entry)
        return _render(Path(args.output), path)
    try:
        settings = settings_for(
            args.quick, args.rounds, args.seed, rows=args.rows, epochs=args.epochs, datasets=args.datasets
        )
    except ValueError as error:
        parser.error(str(error))
    workdir = Path(args.workdir).absolute()
    if args.prepare_only:
        prepare(settings, workdir)
        return 0
    devices = [d.strip() for d in args.devices.split(",") if d.strip()]
    problem = check_devices(devices)
    if problem:
        print(problem, file=sys.stderr)
        return NO_CUDA_STATUS

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "autogluon", "pytorch_lightning"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    command = "python -m bench.gpu " + " ".join(argv if argv is not None else sys.argv[1:])
    for device in devices:
        warm_up(device)
        started = time.monotonic()
        datasets = run_device(device, settings, workdir)
        entry = {
            "machine": machine(device, command),
            "precision": precision_of(settings, device, workdir),
            "settings": asdict(settings),
            "minutes": round((time.monotonic() - started) / 60, 1),
            "datasets": datasets,
        }
        merge(path, device, entry)  # after each device: a later device's failure keeps this one's
    return _render(Path(args.output), path)


def _render(output: Path, path: Path) -> int:
    from bench.report import refresh_side_files

    for written in [path, *refresh_side_files(output)]:
        print(written)
    return 0


def prepare(settings: Settings, workdir: Path) -> None:
    from bench.harness import Workspace, prepare_inprocess

    ws = Workspace(workdir)
    for experiment in settings.experiments:
        prepare_inprocess(ws, experiment.dataset, experiment.rows, experiment.test_fraction)
        print(ws.data_folder(experiment.dataset, experiment.rows))


if __name__ == "__main__":
    raise SystemExit(main())
