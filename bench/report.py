"""docs/benchmarks/results.json, the plots and docs/benchmarks.md, from the part files of a workspace."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import os
import platform
from pathlib import Path
from typing import Any

from bench import next_batch, plots
from bench.config import BenchConfig
from bench.harness import Workspace
from bench.markdown import render

SCHEMA_VERSION = 1
HEADLINES = (
    "label_efficiency_ratio",
    "service_overhead_ratio",
    "scorer_speedup_vs_cleanlab",
    "scorer_vs_numpy_pass",
    "scorer_peak_memory_bytes",
    "time_to_next_batch_seconds",
)
GPU_NOT_MEASURED = "not measured: no GPU was available for this run"  # results.json's gpu without gpu.json


def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "memory_bytes": _meminfo("MemTotal"),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "gpu": "none (not measured)",
        "note": "2 CPU cores shared with other engineers' builds and tests while measuring: "
        "timings are noisy",
    }
    # Installed versions from package metadata: importing autogluon just for this costs ~10 s.
    packages = {"numpy": "numpy", "torch": "torch", "autogluon.multimodal": "autogluon.multimodal",
                "cleanlab": "cleanlab", "grpc": "grpcio"}  # fmt: skip
    for key, package in packages.items():
        try:
            info[key] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            info[key] = "not installed"
    return info


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _meminfo(field: str) -> int:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def headlines(parts: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {name: {} for name in HEADLINES}
    for dataset, result in parts.get("curves", {}).get("datasets", {}).items():
        out["label_efficiency_ratio"][dataset] = {s: r["ratio"] for s, r in result["ratios"].items()}
    for dataset, result in parts.get("overhead", {}).get("datasets", {}).items():
        out["service_overhead_ratio"][dataset] = {
            "per_round": [p["ratio"] for p in result["per_round"]],
            "total": result["ratio_total"],
            "total_model_time_equalised": result["ratio_total_model_time_equalised"],
            "steady_state": result["ratio_steady_state"],
            "steady_state_model_time_equalised": result["ratio_steady_state_model_time_equalised"],
            "steady_state_vs_services_model_time": result["ratio_steady_state_vs_services_model_time"],
            "added_seconds_per_round_steady_state": result["added_seconds_per_round_steady_state"],
        }
        # From a batch's last label to the next batch, per stage, through the services (bench/next_batch.py).
        out["time_to_next_batch_seconds"][dataset] = next_batch.summary(result["services"]["rounds"])
    for size, result in parts.get("scale", {}).get("sizes", {}).items():
        labeled = result.get("with_labels", {})
        out["scorer_speedup_vs_cleanlab"][size] = {
            v: result.get(v, {}).get("speedup") for v in ("with_labels", "unlabeled_only")
        }
        # The scorer's seconds over one numpy pass's (row max + row sum of the pool in memory).
        out["scorer_vs_numpy_pass"][size] = {
            v: result.get(v, {}).get("vs_numpy_pass") for v in ("with_labels", "unlabeled_only")
        }
        out["scorer_peak_memory_bytes"][size] = {
            "scorer": labeled.get("scorer", {}).get("peak_rss_bytes"),
            "cleanlab": labeled.get("cleanlab", {}).get("peak_rss_bytes"),
        }
    return out


def write_report(
    config: BenchConfig, ws: Workspace, output: Path, seconds: float, command: str = ""
) -> list[Path]:
    parts = ws.load_parts()
    folder = output / "benchmarks"
    folder.mkdir(parents=True, exist_ok=True)
    images: dict[str, str] = {}
    for dataset, result in parts.get("curves", {}).get("datasets", {}).items():
        path = plots.learning_curves(dataset, result, folder / f"learning_curve_{dataset}.png")
        images[f"curve:{dataset}"] = path.name
    for dataset, result in parts.get("overhead", {}).get("datasets", {}).items():
        path = plots.overhead(dataset, result, folder / f"overhead_{dataset}.png")
        images[f"overhead:{dataset}"] = path.name
    if parts.get("scale", {}).get("sizes"):
        rate, memory = plots.scale(
            parts["scale"], folder / "scoring_throughput.png", folder / "scoring_memory.png"
        )
        images["scale:rate"], images["scale:memory"] = rate.name, memory.name
    results = {
        "schema_version": SCHEMA_VERSION,
        "mode": config.mode,
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": command or f"make bench MODE={config.mode}",
        "run_seconds": round(seconds, 1),
        "machine": machine(),
        "config": config.to_dict(),
        "headline": headlines(parts),
        "label_efficiency": parts.get("curves", {}),
        "service_overhead": _without_raw_rounds(parts.get("overhead", {})),
        "scoring_at_scale": parts.get("scale", {}),
        "plots": images,
        **_side_files(folder),
    }
    results_path = folder / "results.json"
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    doc = output / "benchmarks.md"
    doc.write_text(render(results))
    return [doc, results_path, *(folder / name for name in images.values())]


def _side_files(folder: Path) -> dict[str, Any]:
    """The measurements other commands write beside results.json, kept as they were measured:
    `python -m bench.image_preset` (image_preset.json) and `python -m bench.gpu` (gpu.json, per device;
    a sentence when neither half was measured)."""
    gpu = folder / "gpu.json"
    return {
        "image_preset": _image_preset(folder),
        "gpu": json.loads(gpu.read_text()) if gpu.exists() else GPU_NOT_MEASURED,
    }


def refresh_side_files(output: Path) -> list[Path]:
    """results.json with the side files read again, and docs/benchmarks.md rendered from it: what a side
    file's command runs after writing its file, so the report shows it without rerunning the benchmark."""
    results_path = output / "benchmarks" / "results.json"
    if not results_path.exists():
        return []
    results = {**json.loads(results_path.read_text()), **_side_files(results_path.parent)}
    results_path.write_text(json.dumps(results, indent=1) + "\n")
    doc = output / "benchmarks.md"
    doc.write_text(render(results))
    return [doc, results_path]


def _image_preset(folder: Path) -> dict[str, Any] | None:
    """The image preset's measurement without its per-cell rows (those stay in image_preset.json)."""
    path = folder / "image_preset.json"
    if not path.exists():
        return None
    return {k: v for k, v in json.loads(path.read_text()).items() if k != "cells"}


def _without_raw_rounds(overhead: dict[str, Any]) -> dict[str, Any]:
    """Keeps the per-round stage seconds of both paths, drops selected ids (noise in a diff)."""
    return json.loads(json.dumps(overhead))
