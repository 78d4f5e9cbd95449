"""The README's "Use it" examples, one per modality, run word for word against real services.

The commands are read from README.md's bash blocks (so the docs cannot drift from what works); only
the data folder (/data/... becomes this test's folder, written from data sets that ship in packages)
and the services' addresses (free ports instead of 50051-50055) change. `labelloop up` is left out:
the fixture starts the same five services with LocalCluster, on free ports. Offline, on 2 cores each
example takes about 15-40 s (printed by -s).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core.config import StorageConfig
from labelloop.sample_data import write_bbc_news, write_digits_images, write_wine_tabular
from labelloop.v1 import experiments_pb2

from tests.support.cluster import client_for, cluster

README = Path(__file__).resolve().parents[2] / "README.md"
LABELLOOP = Path(sys.executable).parent / "labelloop"  # the installed console script
DATA_FOLDER = "/data/"  # where the README's manifests are; the test's own folder replaces it
# Each example's dataset id in the README, and how this test writes its data (small, packaged).
IMAGES, TEXTS, TABLE = "photos", "news", "wine"
DIGIT_IMAGES = 200
TEXTS_PER_TOPIC = 16  # 80 BBC News articles in 5 topics
# Chance is 1/10 (digits), 1/5 (topics), 1/3 (wine cultivars). Measured after 3 rounds of 10 labels
# (2 busy cores): digit images 0.967 (50 labels), BBC News 0.958 (40), wine 0.963 (36).
BETTER_THAN = {IMAGES: 0.8, TEXTS: 0.8, TABLE: 0.8}


def use_it_section() -> str:
    text = README.read_text()
    start = text.index("## Use it\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def readme_examples() -> dict[str, list[list[str]]]:
    """The `labelloop ...` commands of each example, keyed by the dataset id it creates."""
    examples: dict[str, list[list[str]]] = {}
    current: list[list[str]] | None = None
    for block in re.findall(r"```bash\n(.*?)```", use_it_section(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            argv = shlex.split(line, comments=True)
            if not argv or argv[0] != "labelloop" or argv[1] == "up":
                continue
            if argv[1:3] == ["datasets", "create"]:
                current = examples.setdefault(argv[3], [])
            assert current is not None, f"README command before any `datasets create`: {line}"
            current.append(argv)
    return examples


def write_data(folder: Path) -> None:
    write_digits_images(folder / IMAGES, limit=DIGIT_IMAGES)
    full = pd.read_csv(write_bbc_news(folder / "bbc-full"))
    (folder / TEXTS).mkdir()
    news = full.groupby("label").head(TEXTS_PER_TOPIC)
    # A column the model must not read: only --text-column's column is a feature.
    news.assign(characters=news["text"].str.len()).to_csv(folder / TEXTS / "manifest.csv", index=False)
    write_wine_tabular(folder / TABLE)


@pytest.fixture(scope="module")
def services(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalCluster, Path]]:
    workdir = tmp_path_factory.mktemp("readme")
    write_data(workdir / "data")
    with cluster(workdir, StorageConfig(backend="local", root=workdir / "store")) as local:
        yield local, workdir / "data"


def run_example(local: LocalCluster, data: Path, commands: list[list[str]]) -> list[str]:
    """Runs the commands as written, with the test's data folder and addresses; returns their output."""
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
    outputs = []
    for argv in commands:
        args = [arg.replace(DATA_FOLDER, f"{data}/") for arg in argv[1:]]
        done = subprocess.run(
            [str(LABELLOOP), *args, *addresses], capture_output=True, text=True, timeout=240
        )
        assert done.returncode == 0, f"{shlex.join(argv)}\n{done.stdout}\n{done.stderr}"
        outputs.append(done.stdout)
    return outputs


def test_the_readme_has_one_example_per_modality() -> None:
    examples = readme_examples()
    assert set(examples) == {IMAGES, TEXTS, TABLE}
    flags = {dataset: {arg for argv in commands for arg in argv} for dataset, commands in examples.items()}
    assert {"--image-column", "--preset", "image"} <= flags[IMAGES]
    assert {"--text-column", "--preset", "text"} <= flags[TEXTS]
    assert {"--feature-columns", "--preset", "tabular"} <= flags[TABLE]
    for commands in examples.values():
        assert [argv[1:3] for argv in commands][:3] == [
            ["datasets", "create"],
            ["experiments", "create"],
            ["experiments", "watch"],
        ]


@pytest.mark.parametrize("dataset", [IMAGES, TEXTS, TABLE])
def test_readme_example_runs(services: tuple[LocalCluster, Path], dataset: str) -> None:
    local, data = services
    commands = readme_examples()[dataset]
    started = time.monotonic()
    outputs = run_example(local, data, commands)
    seconds = time.monotonic() - started
    experiment = commands[1][3]
    client: LabelLoopClient = client_for(local)
    with client:
        final = client.get(experiment)
        rounds = [r for r in client.list_rounds(experiment) if r.model_uri]
        stored = client.get_dataset(dataset)
    assert final.state == experiments_pb2.EXPERIMENT_STATE_SUCCEEDED, final.status_message
    assert f"{final.name}: SUCCEEDED" in outputs[2]  # what `watch` ends with
    assert len(rounds) >= 3
    assert rounds[-1].labeled_count > rounds[0].labeled_count
    assert rounds[-1].test_accuracy > BETTER_THAN[dataset], [r.test_accuracy for r in rounds]
    if dataset == TEXTS:
        assert list(stored.feature_columns) == ["text"] and not stored.image_column
    if dataset == TABLE:
        assert list(stored.feature_columns) == ["alcohol", "flavanoids", "color_intensity", "proline"]
    print(
        f"\nREADME example {dataset}: {seconds:.0f} s, {len(rounds)} rounds, "
        f"test accuracy {rounds[0].test_accuracy:.3f} ({rounds[0].labeled_count} labels) -> "
        f"{rounds[-1].test_accuracy:.3f} ({rounds[-1].labeled_count} labels)"
    )


def test_column_flags_have_help_and_a_column_named_twice_is_one_line_error(tmp_path: Path) -> None:
    helped = subprocess.run(
        [str(LABELLOOP), "datasets", "create", "--help"], capture_output=True, text=True, timeout=60
    )
    assert helped.returncode == 0, helped.stderr
    for flag, words in [
        ("--image-column", "images:"),
        ("--text-column", "text:"),
        ("--feature-columns", "a table:"),
    ]:
        assert flag in helped.stdout and words in helped.stdout, helped.stdout
    manifest = write_wine_tabular(tmp_path)
    twice = subprocess.run(
        [str(LABELLOOP), "datasets", "create", "w", "--manifest", str(manifest), "--feature-columns",
         "alcohol,hue", "--text-column", "hue", "--controller", "127.0.0.1:1", "--store", "127.0.0.1:1"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert twice.returncode != 0
    assert twice.stderr.strip().splitlines() == [
        "error: --text-column hue is also given as a feature column: name it once"
    ], twice.stderr


def test_a_hub_checkpoint_offline_is_one_line_naming_the_fix(services: tuple[LocalCluster, Path]) -> None:
    """`labelloop up` (and LocalCluster) run the services with HF_HUB_OFFLINE=1: `resnet18` would need
    a download, so `experiments create` refuses it in one line with the offline alternatives."""
    local, data = services
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
    with client_for(local) as client:
        client.create_dataset(
            "hub-check", str(data / TABLE / "manifest.csv"), label_column="label", test_fraction=0.3
        )
    create = ["experiments", "create", "hub-1", "--dataset", "hub-check", "--preset", "image"]
    hub = [
        "--checkpoint",
        "model.timm_image.checkpoint_name=resnet18",
        "--batch-size",
        "5",
        "--max-rounds",
        "1",
    ]
    refused = subprocess.run(
        [str(LABELLOOP), *create, *hub, *addresses], capture_output=True, text=True, timeout=60
    )
    lines = refused.stderr.strip().splitlines()
    assert refused.returncode != 0 and len(lines) == 1, refused.stderr
    assert "'resnet18', a hub name that needs a download" in lines[0]
    assert "(HF_HUB_OFFLINE=1)" in lines[0]
    assert "'labelloop:imagenet/mobilenetv2_100'" in lines[0] and "HF_HUB_OFFLINE=0" in lines[0]
