"""bench/gpu.py (`make bench-gpu`) without a GPU: the exit when CUDA is asked for and torch sees none, the
per-device merge of gpu.json, the trainer configs per device, and docs/benchmarks.md's GPU section with and
without the GPU half. No training, except the last test (slow): one tiny fine-tune run on the CPU."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

import pytest

from bench import gpu
from bench.markdown_gpu import NOT_MEASURED, gpu_section, gpu_shortfall
from bench.report import refresh_side_files

ROOT = Path(__file__).resolve().parents[2]


def device_entry(
    device: str, fit: list[float], predict: list[float], digests: list[str], batch: int = 50
) -> dict[str, Any]:
    """A gpu.json device entry as run_device and main write it, with the given per-round seconds."""
    rounds = [
        {"number": i, "labeled": 20 + batch * i, "fit_seconds": f, "predict_seconds": p,
         "test_accuracy": 0.5 + 0.1 * i, "selected_digest": d}
        for i, (f, p, d) in enumerate(zip(fit, predict, digests, strict=True))
    ]  # fmt: skip
    settings = gpu.settings_for(quick=False)
    entry = {
        "machine": {
            "device": device,
            "gpu": "NVIDIA H200" if device == "cuda" else "none (CPU run)",
            "cpu_count": 16 if device == "cuda" else 2,
            "cpu_model": "AMD EPYC",
            "torch": "2.11.0",
            "torch_cuda": "13.0",
            "torch_threads": 1,
            "autogluon.multimodal": "1.6.3",
            "python": "3.12.3",
            "command": f"python -m bench.gpu --devices {device}",
            "date": "2026-12-01T00:00:00+00:00",
        },
        "settings": asdict(settings),
        "minutes": 3.0,
        "datasets": {
            "digits_images": {
                "pool": 1257,
                "test": 540,
                "seconds": 9.0,
                "rounds": rounds,
                "summary": gpu.summarise(rounds),
            }
        },
    }
    return json.loads(json.dumps(entry))  # as read back from gpu.json: tuples become lists


CPU = device_entry("cpu", [10.0, 20.0, 30.0], [8.0, 8.0, 8.0], ["a1", "b2", ""])
GPU = device_entry("cuda", [2.0, 4.0, 5.0], [1.0, 2.0, 2.0], ["a1", "b2", ""])


def test_cuda_asked_for_without_a_cuda_device_exits_2_with_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}  # no GPU visible to torch, also on a GPU machine
    for devices in ("cuda", "cpu,cuda"):  # never the CPU half alone, silently
        done = subprocess.run(
            [sys.executable, "-m", "bench.gpu", "--devices", devices, "--output", str(tmp_path)],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert done.returncode == gpu.NO_CUDA_STATUS == 2, done.stderr
        assert done.stderr.strip().splitlines() == [gpu.NO_CUDA_MESSAGE]
        assert "run with --devices cpu for the CPU half" in gpu.NO_CUDA_MESSAGE
    assert not (tmp_path / "benchmarks").exists()  # nothing measured, nothing written


def test_unknown_devices_are_refused() -> None:
    assert "unknown devices ['tpu']" in (gpu.check_devices(["cpu", "tpu"]) or "")
    assert gpu.check_devices([]) is not None
    assert gpu.check_devices(["cpu"]) is None


def test_merge_replaces_one_device_and_keeps_the_other(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks" / "gpu.json"
    gpu.merge(path, "cpu", CPU)
    gpu.merge(path, "cuda", GPU)  # measured elsewhere, later
    rerun = {**CPU, "minutes": 7.0}
    merged = gpu.merge(path, "cpu", rerun)
    assert merged == json.loads(path.read_text())
    assert list(merged["devices"]) == ["cuda", "cpu"]  # GPU half first, whatever the order of runs
    assert merged["devices"]["cuda"] == GPU and merged["devices"]["cpu"]["minutes"] == 7.0
    assert merged["devices"]["cuda"]["machine"]["gpu"] == "NVIDIA H200"


def test_the_devices_differ_only_in_num_gpus(tmp_path: Path) -> None:
    from labelloop import presets
    from labelloop.core.storage import LocalStore
    from labelloop.trainer import hparams

    settings = gpu.settings_for(quick=False)
    cuda, cpu = settings.trainer_config("cuda"), settings.trainer_config("cpu")
    assert (cuda.pop("num_gpus"), cpu.pop("num_gpus")) == (1, 0) and cuda == cpu
    assert cpu["mode"] == "fine_tune" and cpu["checkpoints"][0]["source"] == presets.IMAGE_CHECKPOINT
    # Through the trainer's own fit_args (no checkpoint to build): the preset's model and image size,
    # a fixed number of epochs that early stopping cannot cut short, and the device.
    store = LocalStore(tmp_path / "store")
    for device, gpus in (("cuda", 1), ("cpu", 0)):
        config = {**settings.trainer_config(device), "checkpoints": []}
        hp = hparams.fit_args(
            config, n_labeled=70, image_column="image", store=store, cache_dir=tmp_path
        ).hyperparameters
        assert hp["env.num_gpus"] == gpus
        assert hp["model.names"] == ["timm_image"]
        assert hp["model.timm_image.image_size"] == int(presets.IMAGE_SIZE)
        assert hp["optim.max_epochs"] == settings.epochs == 20
        assert hp["optim.patience"] > 2 * settings.epochs  # two validation checks an epoch
        assert not any(k.startswith(hparams.PROBE_PREFIX) for k in hp)


def test_summary_keeps_round_0_apart() -> None:
    summary = CPU["datasets"]["digits_images"]["summary"]
    assert summary["first_fit_seconds"] == 10.0 and summary["median_fit_seconds"] == 25.0
    assert summary["total_fit_seconds"] == 60.0 and summary["final_test_accuracy"] == 0.7
    assert gpu.selected_digest([]) == "" and gpu.selected_digest(["d1"]) != gpu.selected_digest(["d2"])


def test_section_without_the_gpu_half_says_so_and_shows_the_cpu_half() -> None:
    for missing in (None, "not measured: no GPU was available for this run", {"devices": {}}):
        doc = "\n".join(gpu_section(missing))
        assert "## 4. GPU" in doc and NOT_MEASURED in doc and "| round |" not in doc
        assert "make bench-gpu" in doc and gpu.NO_CUDA_MESSAGE not in doc
    doc = "\n".join(gpu_section({"devices": {"cpu": CPU}}))
    assert "no GPU was available to the sessions so far; run `make bench-gpu` on a machine with one" in doc
    assert "| round | labels | fit CPU (s) | predict CPU (s) | accuracy CPU |" in doc
    assert "| 1 | 70 | 20.0 | 8.0 | 0.600 |" in doc and "speed-up" not in doc
    assert "- CPU half: 2 CPU cores" in doc and "- GPU half" not in doc
    assert gpu_shortfall({"devices": {"cpu": CPU}}) == [
        "- GPU: only the CPU half is measured (no GPU lent so far; `make bench-gpu` on a machine with one)."
    ]


def test_section_with_both_halves_compares_them() -> None:
    doc = "\n".join(gpu_section({"devices": {"cuda": GPU, "cpu": CPU}}))
    assert NOT_MEASURED not in doc and gpu_shortfall({"devices": {"cuda": GPU, "cpu": CPU}}) == []
    assert "- GPU half: NVIDIA H200, 16 CPU cores" in doc and "- CPU half: 2 CPU cores" in doc
    head = "| round | labels | fit GPU (s) | fit CPU (s) | fit speed-up | predict GPU (s) | predict CPU (s) |"
    assert head in doc
    assert "| 0 | 20 | 2.0 | 10.0 | 5.0x | 1.0 | 8.0 | 8.0x | 0.500 | 0.500 |" in doc
    # Medians after round 0: fit 25 s against 4.5 s, predict 8 s against 2 s.
    assert "median fit took 25.0 s on the CPU and 4.5 s on the GPU (5.6x)" in doc
    assert "median predict 8.0 s and 2.0 s (4.0x)" in doc
    assert "The batches were the same on both devices in every round." in doc

    other = device_entry("cuda", [2.0, 4.0, 5.0], [1.0, 2.0, 2.0], ["a1", "zz", ""])
    doc = "\n".join(gpu_section({"devices": {"cuda": other, "cpu": CPU}}))
    assert "**The batches differed (rounds 1): not the same experiment.**" in doc
    quick = {**GPU, "settings": asdict(gpu.settings_for(quick=True))}
    doc = "\n".join(gpu_section({"devices": {"cuda": quick, "cpu": CPU}}))
    assert "The devices ran with different settings" in doc
    smaller = device_entry("cpu", [10.0, 20.0, 30.0], [8.0, 8.0, 8.0], ["a1", "b2", ""], batch=10)
    doc = "\n".join(gpu_section({"devices": {"cuda": GPU, "cpu": smaller}}))
    assert "| 1 | 70 / 30 | 4.0 | 20.0 | 5.0x |" in doc  # each device's labels when they differ


def test_merge_from_a_returned_file_renders_the_report(tmp_path: Path) -> None:
    """The GPU half comes back from the device machine as a gpu.json of its own: --merge-from takes it
    into docs/benchmarks/gpu.json beside the CPU half and renders benchmarks.md from results.json."""
    folder = tmp_path / "docs" / "benchmarks"
    folder.mkdir(parents=True)
    (folder / "results.json").write_text((ROOT / "docs" / "benchmarks" / "results.json").read_text())
    gpu.merge(folder / "gpu.json", "cpu", CPU)
    returned = tmp_path / "returned.json"
    returned.write_text(json.dumps({"schema_version": 1, "devices": {"cuda": GPU}}))

    assert gpu.main(["--merge-from", str(returned), "--output", str(tmp_path / "docs")]) == 0
    assert set(json.loads((folder / "gpu.json").read_text())["devices"]) == {"cuda", "cpu"}
    results = json.loads((folder / "results.json").read_text())
    assert results["gpu"]["devices"]["cuda"] == GPU
    doc = (tmp_path / "docs" / "benchmarks.md").read_text()
    assert "## 4. GPU" in doc and "| 0 | 20 | 2.0 | 10.0 | 5.0x |" in doc and NOT_MEASURED not in doc
    assert "## Rerun" in doc and "make bench-gpu" in doc

    (folder / "gpu.json").unlink()  # no side file: the sentence of a report without either half
    assert refresh_side_files(tmp_path / "docs") == [
        tmp_path / "docs" / "benchmarks.md",
        folder / "results.json",
    ]
    assert json.loads((folder / "results.json").read_text())["gpu"].startswith("not measured")
    assert NOT_MEASURED in (tmp_path / "docs" / "benchmarks.md").read_text()


@pytest.mark.slow
def test_a_tiny_cpu_run_end_to_end(tmp_path: Path) -> None:
    """`python -m bench.gpu --devices cpu` for real on 200 digit images: 20 labels, then one batch of 10,
    one epoch (about 15 s); gpu.json gets the CPU half beside a GPU half measured elsewhere, and the
    report renders both."""
    docs = tmp_path / "docs"
    (docs / "benchmarks").mkdir(parents=True)
    (docs / "benchmarks" / "results.json").write_text(
        (ROOT / "docs" / "benchmarks" / "results.json").read_text()
    )
    gpu.merge(docs / "benchmarks" / "gpu.json", "cuda", GPU)
    sizes = ["--datasets", "digits_images", "--rows", "200", "--rounds", "1", "--epochs", "1"]
    argv = ["--devices", "cpu", *sizes, "--output", str(docs), "--workdir", str(tmp_path / "work")]
    assert gpu.main(argv) == 0

    devices = json.loads((docs / "benchmarks" / "gpu.json").read_text())["devices"]
    assert devices["cuda"] == GPU  # the other half, kept
    cpu = devices["cpu"]
    assert cpu["machine"]["device"] == "cpu" and cpu["machine"]["command"].startswith(
        "python -m bench.gpu --devices cpu"
    )
    assert cpu["precision"] == "32" and cpu["settings"]["epochs"] == 1
    run = cpu["datasets"]["digits_images"]
    assert (run["pool"], run["test"]) == (140, 60)
    assert [r["labeled"] for r in run["rounds"]] == [20, 70]  # 2 per class, then a batch of 50
    for r in run["rounds"]:
        assert r["fit_seconds"] > 0 and r["predict_seconds"] > 0 and 0 <= r["test_accuracy"] <= 1
    assert run["rounds"][0]["selected_digest"] and run["rounds"][1]["selected_digest"] == ""
    doc = (docs / "benchmarks.md").read_text()
    # Other settings than the GPU half's (1 epoch, 200 rows, 1 round): said so.
    assert "The devices ran with different settings" in doc
    assert f"| 1 | 70 | 4.0 | {run['rounds'][1]['fit_seconds']:.1f} |" in doc
    assert "| 2 | 120 | 5.0 |  |  | 2.0 |  |  | 0.700 |  |" in doc  # a round the CPU half did not run
