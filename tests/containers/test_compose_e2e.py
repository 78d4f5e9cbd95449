"""The whole system as containers (compose.yaml): the images `make images compose-images` built, the
five services, SeaweedFS and Prometheus, each as UID 10001 on a read-only root filesystem. The CLI on
the host ingests 400 digit images (a read-only bind mount into the store), runs a 2-round ActiveLab
experiment whose training runs inside the trainer container, and the rounds, the experiment's
annotation log and Prometheus' scraped metrics are checked. The project is removed afterwards
(containers, network, volumes); the images stay cached.

Run by `make e2e-containers` only (marker `containers`): it needs a Docker engine and the images.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from labelloop.client import LabelLoopClient
from labelloop.sample_data import write_digits_images

from tests.containers.compose import SERVICES, ComposeProject

pytestmark = pytest.mark.containers

CLI = str(Path(sys.executable).parent / "labelloop")
IMAGES = 400  # 280 pool, 120 test
DATASET, EXPERIMENT = "digits", "containers-e2e"
# The demo's model (cli/demo.py) with fewer epochs: MobileNetV2 from the trainer image's offline weights.
TRAINING = [
    "--hp", "model.names=[timm_image]",
    "--hp", "model.timm_image.image_size=32",
    "--hp", "optim.max_epochs=10",
    "--hp", "optim.lr=0.001",
    "--checkpoint", "model.timm_image.checkpoint_name=labelloop:imagenet/mobilenetv2_100",
]  # fmt: skip


@pytest.fixture(scope="module")
def system() -> Iterator[ComposeProject]:
    if shutil.which("docker") is None:
        pytest.fail("no docker command: `make e2e-containers` installs and starts the engine")
    # The store runs as UID 10001 and reads the manifest through a bind mount: world-readable folders.
    input_dir = Path(tempfile.mkdtemp(prefix="labelloop-e2e-"))
    input_dir.chmod(0o755)
    write_digits_images(input_dir / "digits", size=32, limit=IMAGES)
    project = ComposeProject(f"labelloop-e2e-{os.getpid()}", input_dir)
    started = time.monotonic()
    try:
        project.compose("up", "-d", "--no-build")
        project.wait_healthy()
        print(f"\ncompose up to all healthy: {time.monotonic() - started:.1f} s")
        yield project
    except BaseException:
        print(project.logs(), file=sys.stderr)
        raise
    finally:
        project.down()
        shutil.rmtree(input_dir, ignore_errors=True)
        left = project.leftovers()
        assert not any(left.values()), f"compose down left {left}"


def cli(project: ComposeProject, *args: str, timeout: float = 120) -> str:
    command = [
        CLI,
        "--store", f"127.0.0.1:{project.ports['STORE']}",
        "--controller", f"127.0.0.1:{project.ports['CONTROLLER']}",
        *args,
    ]  # fmt: skip
    run = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    assert run.returncode == 0, f"{' '.join(args)}: exit {run.returncode}\n{run.stdout}\n{run.stderr}"
    return run.stdout


def prometheus(project: ComposeProject, query: str) -> list[dict]:
    url = f"http://127.0.0.1:{project.ports['PROMETHEUS']}/api/v1/query?" + urllib.parse.urlencode(
        {"query": query}
    )
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.load(reply)
    assert body["status"] == "success", body
    return body["data"]["result"]


def test_containers_run_as_10001_on_read_only_root(system: ComposeProject) -> None:
    for service in SERVICES:
        info = system.inspect(service)
        assert info["Config"]["User"] == "10001:10001", service
        assert info["HostConfig"]["ReadonlyRootfs"] is True, service
        assert info["HostConfig"]["CapDrop"] == ["ALL"], service
        assert info["State"]["Health"]["Status"] == "healthy", service
    serving = {service: round(system.seconds_to_serving(service), 1) for service in SERVICES}
    print(f"\nseconds from container start to serving: {serving}")


# Three trainings take about a minute on an idle machine; on 2 cores shared with other jobs one took 9 min.
@pytest.mark.timeout(2700)
def test_experiment_trains_in_the_trainer_container(system: ComposeProject) -> None:
    dataset = json.loads(
        cli(
            system, "datasets", "create", DATASET,
            "--manifest", "/input/digits/manifest.csv",
            "--image-column", "image_path", "--label-column", "label",
            "--test-fraction", "0.3", "--seed", "0", "-o", "json",
        )
    )  # fmt: skip
    assert (dataset["pool_count"], dataset["test_count"]) == (280, 120)
    assert dataset["examples_uri"].startswith("s3://labelloop/")  # ingested into SeaweedFS

    started = time.monotonic()
    cli(
        system, "experiments", "create", EXPERIMENT, "--dataset", DATASET,
        "--strategy", "activelab", "--per-class", "3", "--batch-size", "40", "--max-rounds", "2",
        "--seed", "0", *TRAINING, "--start",
    )  # fmt: skip
    cli(system, "experiments", "watch", EXPERIMENT, timeout=2400)
    final = json.loads(cli(system, "experiments", "get", EXPERIMENT, "-o", "json"))
    assert final["state"] == "EXPERIMENT_STATE_SUCCEEDED", f"{final.get('status_message')}\n{system.logs()}"
    rounds = json.loads(cli(system, "experiments", "rounds", EXPERIMENT, "-o", "json"))
    print(f"\nexperiment: {time.monotonic() - started:.0f} s")
    print("\n".join(f"round {r['round']}: {r['labeled']} labeled, {r['test_accuracy']:.3f}" for r in rounds))

    # Round 0 trains on the initial 3 per class (the demo's start); each later round adds a batch of 40.
    assert [r["labeled"] for r in rounds] == [30 + 40 * i for i in range(len(rounds))]
    assert len(rounds) >= 2
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in rounds)
    assert rounds[-1]["test_accuracy"] > 0.3, rounds  # far above chance (0.1): a model was trained

    # The experiment's own annotation log in the store: the simulated oracle's labels, one per example.
    with LabelLoopClient(
        f"127.0.0.1:{system.ports['CONTROLLER']}", f"127.0.0.1:{system.ports['STORE']}"
    ) as client:
        annotations = client.list_annotations(DATASET, EXPERIMENT)
    assert len({a.example_id for a in annotations}) == rounds[-1]["labeled"]
    assert {a.label for a in annotations} <= {str(d) for d in range(10)}

    # The training ran inside the trainer container: its runs counter, scraped by Prometheus.
    deadline = time.monotonic() + 60
    while True:
        up = {r["metric"]["service"]: r["value"][1] for r in prometheus(system, 'up{job="labelloop"}')}
        runs = prometheus(system, 'sum(labelloop_trainer_runs_total{service="trainer",state="succeeded"})')
        accuracy = prometheus(system, "labelloop_experiment_test_accuracy")
        final_scraped = bool(accuracy) and float(accuracy[0]["value"][1]) == pytest.approx(
            rounds[-1]["test_accuracy"], abs=1e-6
        )  # a scrape from before the last round shows the previous accuracy: wait for the next one
        if runs and float(runs[0]["value"][1]) >= len(rounds) and final_scraped:
            break
        assert time.monotonic() < deadline, f"Prometheus: up={up} runs={runs} accuracy={accuracy}"
        time.sleep(2)
    assert up == dict.fromkeys(("store", "trainer", "scorer", "selector", "controller"), "1")
    assert float(accuracy[0]["value"][1]) == pytest.approx(rounds[-1]["test_accuracy"], abs=1e-6)
