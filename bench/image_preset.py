"""`python -m bench.image_preset --output docs`: how the image preset's first model was chosen.

A linear model must not lose to a plain logistic regression on the raw pixels with the same labels
(issue 9). This measures, on random labeled sets of 20/50/100/200 examples (3 seeds each), the test
accuracy of
- a logistic regression on the raw grey pixels in 0..1 (the floor; scikit-learn's defaults);
- the linear probe (`labelloop.trainer.probe.fit`) on ImageNet MobileNetV2 features alone, at 64, 96
  and 128 px;
- the probe on the 28 px pixels beside those features (`embeddings.beside_pixels`, the preset's
  embedding with `linear_probe.pixels`),
on digit images (scikit-learn's digits as 32 px PNGs, as bench/data.py writes them; 70/30 split) and
two disjoint Fashion-MNIST draws (2,000 pool and 1,000 test images each; A is the draw the preset
research used, B one nobody tuned to), and the embedding cost per image size (the
same 512 images, sizes interleaved, the fastest of 3 passes). Writes docs/benchmarks/image_preset.json,
which docs/benchmarks.md renders. Takes about 10 minutes on 2 cores; features are cached in --workdir.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

SIZES, LABELS, SEEDS, PIXELS = (64, 96, 128), (20, 50, 100, 200), (0, 1, 2), 28
FLOOR = "raw pixels, logistic regression"


def _write_pngs(folder: Path, images: np.ndarray, upscale: int = 0) -> list[str]:
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, pixels in enumerate(images):
        path = folder / f"{i:05d}.png"
        if not path.exists():
            image = Image.fromarray(pixels)
            if upscale:  # nearest keeps the digit's blocky pixels, as sample_data.write_digits_images
                image = image.resize((upscale, upscale), Image.Resampling.NEAREST)
            image.convert("RGB").save(path)
        paths.append(str(path))
    return paths


def datasets(root: Path) -> dict[str, tuple[list[str], np.ndarray, list[str], np.ndarray]]:
    """name -> (pool paths, pool labels, test paths, test labels)."""
    from labelloop.sample_data import FASHION_MNIST_FOLDER, read_idx
    from sklearn.datasets import load_digits

    out = {}
    digits = load_digits()
    grey = (digits.images * (255 / 16)).clip(0, 255).astype(np.uint8)
    order = np.random.default_rng(0).permutation(len(grey))
    cut = int(len(grey) * 0.7)
    pool, test = order[:cut], order[cut:]
    out["digit images"] = (
        _write_pngs(root / "digits-pool", grey[pool], 32), digits.target[pool],
        _write_pngs(root / "digits-test", grey[test], 32), digits.target[test],
    )  # fmt: skip
    train = read_idx(FASHION_MNIST_FOLDER / "train-images-idx3-ubyte.gz")
    train_y = read_idx(FASHION_MNIST_FOLDER / "train-labels-idx1-ubyte.gz")
    t10k = read_idx(FASHION_MNIST_FOLDER / "t10k-images-idx3-ubyte.gz")
    t10k_y = read_idx(FASHION_MNIST_FOLDER / "t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(12345)
    a_pool, a_test = rng.permutation(len(train))[:2000], rng.permutation(len(t10k))[:1000]
    # B: the first images of each file that A does not hold (the files are in random order), shuffled.
    rng = np.random.default_rng(777)
    b_pool = rng.permutation(np.setdiff1d(np.arange(len(train)), a_pool)[:2000])
    b_test = rng.permutation(np.setdiff1d(np.arange(len(t10k)), a_test)[:1000])
    for name, p, t in (("Fashion-MNIST A", a_pool, a_test), ("Fashion-MNIST B", b_pool, b_test)):
        folder = name[-1].lower()
        out[name] = (
            _write_pngs(root / f"fashion-{folder}-pool", train[p]), train_y[p],
            _write_pngs(root / f"fashion-{folder}-test", t10k[t]), t10k_y[t],
        )  # fmt: skip
    return out


def _features(root: Path, name: str, paths: list[str], size: int, checkpoint: Path) -> np.ndarray:
    from labelloop.trainer.embeddings import embed_images

    cached = root / "features" / f"{name.replace(' ', '-')}-{len(paths)}-{size}.npy"
    if not cached.exists():
        cached.parent.mkdir(parents=True, exist_ok=True)
        np.save(cached, embed_images(paths, checkpoint, size))
    return np.load(cached)


def _accuracy(
    method: str,
    data: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    rows: np.ndarray,
    seed: int,
    prescaled: bool,
) -> float:
    """Test accuracy of `method` trained on `rows` of the pool; data = (pool, test, pool labels, truth)."""
    pool, test, y, truth = data
    from labelloop.trainer import probe
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    labels = [str(v) for v in y[rows]]
    if method == FLOOR:
        with threadpool_limits(limits=1, user_api="blas"):
            plain = LogisticRegression(max_iter=3000, random_state=seed).fit(pool[rows], labels)
        return float((plain.predict(test) == truth.astype(str)).mean())
    backbone = {"image_pixels": PIXELS} if prescaled else {}
    model = probe.fit(pool[rows], labels, pool, c=probe.DEFAULT_C, seed=seed, backbone=backbone)
    predicted = np.asarray(model.classes)[model.predict_proba(test.astype(np.float64)).argmax(axis=1)]
    return float((predicted == truth.astype(str)).mean())


def measure(root: Path) -> dict[str, Any]:
    from labelloop.trainer import checkpoints
    from labelloop.trainer.embeddings import beside_pixels, grey_pixels

    checkpoint = checkpoints.imagenet_mobilenetv2(root / "checkpoints")
    cells: list[dict[str, Any]] = []
    for name, (pool_paths, pool_y, test_paths, test_y) in datasets(root).items():
        # The floor's input: the grey values at the stored size (every image here is grey).
        grey = [grey_pixels(p, _size(p[0])) for p in (pool_paths, test_paths)]
        block = [grey_pixels(p, PIXELS) for p in (pool_paths, test_paths)]
        methods: dict[str, tuple[np.ndarray, np.ndarray, bool]] = {FLOOR: (grey[0], grey[1], False)}
        for size in SIZES:
            pool_f, test_f = (_features(root, name + s, p, size, checkpoint) for s, p in
                              (("-pool", pool_paths), ("-test", test_paths)))  # fmt: skip
            methods[f"MobileNetV2 {size} px"] = (pool_f, test_f, False)
            methods[f"{PIXELS} px pixels + MobileNetV2 {size} px"] = (
                beside_pixels(block[0], pool_f), beside_pixels(block[1], test_f), True,
            )  # fmt: skip
        for seed in SEEDS:
            order = np.random.default_rng(1000 + seed).permutation(len(pool_y))
            for n in LABELS:
                for method, (pool, test, prescaled) in methods.items():
                    data = (pool, test, pool_y, test_y)
                    accuracy = _accuracy(method, data, order[:n], seed, prescaled)
                    cells.append({"dataset": name, "method": method, "labels": n, "seed": seed,
                                  "accuracy": round(accuracy, 4)})  # fmt: skip
        print(f"{name}: done", file=sys.stderr, flush=True)
    return {"cells": cells, "embedding_seconds_per_1000": _timing(datasets(root)["Fashion-MNIST B"][0][:512],
                                                                  checkpoint)}  # fmt: skip


def _size(path: str) -> int:
    from PIL import Image

    with Image.open(path) as image:
        return int(image.size[0])


def _timing(paths: list[str], checkpoint: Path) -> dict[str, float]:
    from labelloop.trainer.embeddings import embed_images

    best: dict[int, float] = {}
    for _ in range(3):
        for size in SIZES:
            started = time.perf_counter()
            embed_images(paths, checkpoint, size)
            best[size] = min(best.get(size, float("inf")), time.perf_counter() - started)
    return {f"{size} px": round(1000 * seconds / len(paths), 2) for size, seconds in best.items()}


def summary(cells: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std per (data set, method, labels), and per method the (data set, labels, seed) cells at
    least as good as the floor."""
    table: dict[str, dict[str, dict[str, list[float]]]] = {}
    for c in cells:
        table.setdefault(c["dataset"], {}).setdefault(c["method"], {}).setdefault(
            str(c["labels"]), []
        ).append(c["accuracy"])
    floor = {(c["dataset"], c["labels"], c["seed"]): c["accuracy"] for c in cells if c["method"] == FLOOR}
    wins: dict[str, list[int]] = {}
    for c in cells:
        won = c["accuracy"] >= floor[(c["dataset"], c["labels"], c["seed"])]
        wins.setdefault(c["method"], [0, 0])
        wins[c["method"]][0] += int(won)
        wins[c["method"]][1] += 1
    means = {
        d: {m: {n: [round(float(np.mean(v)), 3), round(float(np.std(v)), 3)] for n, v in by_n.items()}
            for m, by_n in by_method.items()}
        for d, by_method in table.items()
    }  # fmt: skip
    return {"mean_std": means, "cells_at_least_the_floor": wins}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.image_preset", description=__doc__)
    parser.add_argument("--workdir", default="bench-output/image-preset-check")
    parser.add_argument("--output", default="docs")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(2)
    started = time.monotonic()
    measured = measure(Path(args.workdir).absolute())
    result = {
        "generated_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "command": "python -m bench.image_preset " + " ".join(argv if argv is not None else sys.argv[1:]),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "labels": list(LABELS), "seeds": list(SEEDS), "pixels": PIXELS,
        **summary(measured["cells"]),
        "embedding_seconds_per_1000": measured["embedding_seconds_per_1000"],
        "cells": measured["cells"],
    }  # fmt: skip
    path = Path(args.output) / "benchmarks" / "image_preset.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=1) + "\n")
    print(path)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
