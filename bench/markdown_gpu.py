"""docs/benchmarks.md's GPU section, from docs/benchmarks/gpu.json (`python -m bench.gpu`): per-round fit
and predict seconds of the same fine-tune experiment on a GPU and on the CPU, each half with its machine."""

from __future__ import annotations

from typing import Any

NOT_MEASURED = (
    "**GPU half not measured: no GPU was available to the sessions so far; run `make bench-gpu` on a "
    "machine with one.**"
)
RUN_IT = "no GPU lent so far; `make bench-gpu` on a machine with one"
DEVICE_NAMES = {"cuda": "GPU", "cpu": "CPU"}
# The workplace's lent GPU machine has no AutoGluon and no network: bench/gpu_wheels.sh fetches the
# wheels it lacks into .whl/ and writes the data sets into bench-output/gpu/data, which the call carries;
# bench/gpu_device.sh installs them there and runs the GPU half.
DEVICE_CARRY = '[".whl", "bench-output/gpu/data"]'
DEVICE_COMMAND = "bash bench/gpu_device.sh"


def _devices(gpu: dict[str, Any] | str | None) -> dict[str, Any]:
    """gpu.json's devices; results.json holds a sentence instead when neither half was measured."""
    return gpu.get("devices", {}) if isinstance(gpu, dict) else {}


def gpu_section(gpu: dict[str, Any] | str | None) -> list[str]:
    devices = _devices(gpu)
    out = [
        "## 4. GPU",
        "",
        "One active-learning experiment on digit images and one on Fashion-MNIST through the in-process "
        "loop (the trainer's own `hparams.fit_args`), per device only `num_gpus` changed: the fine-tune "
        f"path (MobileNetV2 from ImageNet at the image preset's {_image_size(devices)}, every weight "
        "trained), which is what a GPU speeds up. The image preset's linear probe is not measured: it never "
        "switches to fine-tuning (`fine_tune_from_labels` 0) and its work (one MobileNetV2 forward pass per "
        "pool image and data set, then a scikit-learn logistic regression) runs on the CPU in the trainer "
        "whatever the machine has. The random strategy draws each batch from a seeded generator, so both "
        "devices train on the same labeled ids every round (checked below), with a fixed number of epochs "
        "(early stopping off); only the arithmetic differs (AutoGluon's 16-bit mixed precision on the GPU, "
        "float32 on the CPU). Round 0 is left out of the medians: a device's first fit also pays its lazy "
        "set-up. Raw numbers: [benchmarks/gpu.json](benchmarks/gpu.json).",
        "",
    ]
    if "cuda" not in devices:
        out += [NOT_MEASURED, ""]
    if not devices:
        return [*out, *_how_to_run()]
    out += [f"- {DEVICE_NAMES.get(d, d)} half: {_machine(e)}" for d, e in devices.items()]
    out.append("")
    out += _settings_note(devices)
    for dataset in dict.fromkeys(d for e in devices.values() for d in e["datasets"]):  # each once, in order
        out += _dataset_table(dataset, devices)
    return [*out, *_how_to_run()]


def _image_size(devices: dict[str, Any]) -> str:
    sizes = {e["settings"]["hyperparameters"].get("model.timm_image.image_size") for e in devices.values()}
    return f"{sizes.pop()} px" if len(sizes) == 1 and None not in sizes else "image size"


def gpu_shortfall(gpu: dict[str, Any] | str | None) -> list[str]:
    """The 'Shortfalls' line: what of the GPU section is missing."""
    devices = _devices(gpu)
    if "cuda" in devices:
        return []
    if "cpu" in devices:
        return [f"- GPU: only the CPU half is measured ({RUN_IT})."]
    return [f"- GPU: not measured ({RUN_IT})."]


def _machine(entry: dict[str, Any]) -> str:
    m = entry["machine"]
    gpu = f"{m['gpu']}, " if m["device"] == "cuda" else ""
    threads = f"{m['torch_threads']} thread" + ("s" if m["torch_threads"] != 1 else "")
    return (
        f"{gpu}{m['cpu_count']} CPU cores ({m['cpu_model']}), torch {m['torch']} (CUDA {m['torch_cuda']}, "
        f"{threads}), autogluon.multimodal {m['autogluon.multimodal']}, Python "
        f"{m['python']}; training precision {entry.get('precision', 'not recorded')}; "
        f"`{m['command'].strip()}` on {m['date']} ({entry['minutes']:.0f} min)"
    )


def _settings_note(devices: dict[str, Any]) -> list[str]:
    settings = [e["settings"] for e in devices.values()]
    first = settings[0]
    sizes = ", ".join(
        f"{e['dataset']} {e['rows'] or 'all'} rows ({e['per_class']} labels per class, then {e['rounds']} "
        f"rounds of {e['batch_size']})"
        for e in first["experiments"]
    )
    note = (
        f"Settings: {sizes}; {first['epochs']} epochs a fit; {first['strategy']} strategy, "
        f"seed {first['seed']}."
    )
    if any(s != first for s in settings[1:]):
        note += " **The devices ran with different settings: their seconds do not compare.**"
    return [note, ""]


def _dataset_table(dataset: str, devices: dict[str, Any]) -> list[str]:
    runs = {d: e["datasets"][dataset] for d, e in devices.items() if dataset in e["datasets"]}
    names = [DEVICE_NAMES.get(d, d) for d in runs]
    both = "cuda" in runs and "cpu" in runs
    head = ["round", "labels"]
    for stage in ("fit", "predict"):
        head += [f"{stage} {n} (s)" for n in names]
        head += [f"{stage} speed-up"] if both else []
    head += [f"accuracy {n}" for n in names]
    first = next(iter(runs.values()))
    lines = [
        f"**{dataset}** ({first['pool']} pool and {first['test']} test images; predict: pool and test)",
        "",
        "| " + " | ".join(head) + " |",
        "|" + "---|" * len(head),
    ]
    by_round = {d: {r["number"]: r for r in run["rounds"]} for d, run in runs.items()}
    numbers = sorted({n for rounds in by_round.values() for n in rounds})
    for number in numbers:  # a device that ran fewer rounds (other settings) leaves its cells empty
        present = [rounds[number] for rounds in by_round.values() if number in rounds]
        cells = [str(number), " / ".join(str(n) for n in dict.fromkeys(r["labeled"] for r in present))]
        for stage in ("fit", "predict"):
            cells += [_cell(rounds.get(number), f"{stage}_seconds", ".1f") for rounds in by_round.values()]
            if both:
                cpu, cuda = by_round["cpu"].get(number), by_round["cuda"].get(number)
                cells.append(_ratio(cpu, cuda, stage) if cpu and cuda else "")
        cells += [_cell(rounds.get(number), "test_accuracy", ".3f") for rounds in by_round.values()]
        lines.append("| " + " | ".join(cells) + " |")
    lines.append("")
    if both:
        return lines + _comparison(runs["cpu"], runs["cuda"])
    for device, run in runs.items():
        s = run["summary"]
        lines += [
            f"After round 0 on the {DEVICE_NAMES.get(device, device)}: median fit "
            f"{s['median_fit_seconds']:.1f} s, median predict {s['median_predict_seconds']:.1f} s; final "
            f"test accuracy {s['final_test_accuracy']:.3f}.",
            "",
        ]
    return lines


def _cell(record: dict[str, Any] | None, key: str, spec: str) -> str:
    return f"{record[key]:{spec}}" if record else ""


def _ratio(cpu: dict[str, Any], gpu: dict[str, Any], stage: str) -> str:
    seconds = gpu[f"{stage}_seconds"]
    return f"{cpu[f'{stage}_seconds'] / seconds:.1f}x" if seconds else "n/a"


def _comparison(cpu: dict[str, Any], gpu: dict[str, Any]) -> list[str]:
    c, g = cpu["summary"], gpu["summary"]
    differ = [
        str(a["number"])
        for a, b in zip(cpu["rounds"], gpu["rounds"], strict=False)
        if a["selected_digest"] != b["selected_digest"]
    ]
    if len(cpu["rounds"]) != len(gpu["rounds"]):
        same = "**The devices ran different numbers of rounds: not the same experiment.**"
    elif differ:
        same = f"**The batches differed (rounds {', '.join(differ)}): not the same experiment.**"
    else:
        same = "The batches were the same on both devices in every round."
    fit, predict = (c[k] / g[k] if g[k] else 0.0 for k in ("median_fit_seconds", "median_predict_seconds"))
    return [
        f"After round 0, the median fit took {c['median_fit_seconds']:.1f} s on the CPU and "
        f"{g['median_fit_seconds']:.1f} s on the GPU ({fit:.1f}x), the median predict "
        f"{c['median_predict_seconds']:.1f} s and {g['median_predict_seconds']:.1f} s ({predict:.1f}x); "
        f"final test accuracy {c['final_test_accuracy']:.3f} on the CPU, {g['final_test_accuracy']:.3f} on "
        f"the GPU. {same}",
        "",
    ]


def _how_to_run() -> list[str]:
    return [
        "To measure: `make bench-gpu` on a machine with a GPU and this repository's virtualenv (the GPU "
        "half), `make bench-gpu-cpu` for the CPU half; each merges its device into gpu.json and renders "
        "this page again. On this workplace's lent GPU machine (no AutoGluon and no network there): here "
        "`bench/gpu_wheels.sh` (the wheels it lacks into `.whl/`, the data sets into "
        f"`bench-output/gpu/data`), then one device call with carry `{DEVICE_CARRY}` and the command "
        f"`{DEVICE_COMMAND}` (timeout 600 s), then here `.venv/bin/python -m bench.gpu --merge-from "
        "<the gpu.json it returned> --output docs`.",
        "",
    ]
