"""A scripted session: `labelloop experiments watch` on a terminal (a pty) and piped, while a real
experiment runs on all five services (tabular digits, a linear probe: seconds a round); then `get`
and `rounds` show each round's model and the `labelloop predict` command that uses it, which runs.
Last, a fine-tuning round, whose epochs `watch` shows as the trainer reports them."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest
from labelloop.cli.local import LocalCluster
from labelloop.cli.main import main
from labelloop.client import LabelLoopClient, trainer_config
from labelloop.core.config import StorageConfig

from tests.support.cluster import client_for, cluster, ingest_tabular_digits, write_tabular_digits

pytestmark = pytest.mark.integration

EXPERIMENT, ROUNDS = "watched", 3
ESCAPE = "\x1b"


@pytest.fixture(scope="module")
def everything(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[LocalCluster, LabelLoopClient, Path]]:
    workdir = tmp_path_factory.mktemp("watch")
    with cluster(workdir, StorageConfig(backend="local", root=workdir / "store")) as local:
        client = client_for(local)
        ingest_tabular_digits(client, workdir / "data", rows=200)
        yield local, client, workdir
        client.close()


class Watcher:
    """`labelloop experiments watch` as a child process, its output collected by a thread."""

    def __init__(self, local: LocalCluster, terminal: bool, experiment: str = EXPERIMENT):
        command = [
            sys.executable,
            "-m",
            "labelloop.cli.main",
            "experiments",
            "watch",
            experiment,
            "--controller",
            local.address("controller"),
            "--store",
            local.address("store"),
            "--interval",
            "1",
        ]
        env = {**os.environ, "COLUMNS": "200"}
        self.chunks: list[bytes] = []
        if terminal:
            master, slave = pty.openpty()
            self.process = subprocess.Popen(command, stdin=slave, stdout=slave, stderr=slave, env=env)
            os.close(slave)
            read = lambda: os.read(master, 4096)  # noqa: E731
        else:
            self.process = subprocess.Popen(
                command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env
            )
            assert self.process.stdout is not None
            descriptor = self.process.stdout.fileno()
            read = lambda: os.read(descriptor, 4096)  # noqa: E731
        self.thread = threading.Thread(target=self._collect, args=(read,), daemon=True)
        self.thread.start()

    def _collect(self, read: object) -> None:
        while True:
            try:
                chunk = read()  # type: ignore[operator]
            except OSError:  # EIO: the pty's child has exited
                return
            if not chunk:
                return
            self.chunks.append(chunk)

    def text(self) -> str:
        return b"".join(self.chunks).decode(errors="replace")

    def finish(self, timeout: float = 300) -> tuple[int, str]:
        code = self.process.wait(timeout)
        self.thread.join(10)
        return code, self.text()


def test_watch_on_a_terminal_and_piped_then_the_models(
    everything: tuple[LocalCluster, LabelLoopClient, Path],
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    local, client, workdir = everything
    client.create_experiment(
        EXPERIMENT,
        dataset="digits",
        per_class=2,
        batch_size=10,
        max_rounds=ROUNDS,
        trainer=trainer_config(mode="linear-probe", num_gpus=0),
        seed=3,
    )
    on_terminal, piped = Watcher(local, terminal=True), Watcher(local, terminal=False)
    deadline = time.monotonic() + 60
    while "round 0" not in on_terminal.text() or "round 0" not in piped.text():  # both are watching
        assert time.monotonic() < deadline, (on_terminal.text(), piped.text())
        time.sleep(0.1)
    client.start(EXPERIMENT)
    code, shown = on_terminal.finish()
    assert code == 0, shown
    code, lines = piped.finish()
    assert code == 0, lines

    # On the terminal: one status line redrawn in place, a line left behind per finished round.
    assert "\r\x1b[K" in shown
    statuses = [s.strip() for s in re.split(r"\r\x1b\[K|\r?\n", shown) if s.strip().startswith("round")]
    first_done = next(i for i, s in enumerate(statuses) if s.startswith("round 0 done"))
    before = [s for s in statuses if re.match(r"round 0/3  (not started|snapshot|train|evaluate)", s)]
    assert before and all("accuracy" not in s for s in before), statuses  # no accuracy before evaluation
    assert statuses[0].startswith("round 0/3  not started  labeled 0")
    assert any(re.search(r"round \d/3 .*elapsed \d+s", s) for s in statuses)
    assert any(re.search(r"ETA \d+(m\d\ds|s)", s) for s in statuses[first_done:]), statuses
    assert "ETA after round 0" in " ".join(statuses[:first_done])
    assert "experiments/watched: SUCCEEDED" in shown

    # Piped: plain lines, no escape codes, the same information.
    assert ESCAPE not in lines and "\r" not in lines
    plain = lines.splitlines()
    assert plain[0].startswith("round 0/3  not started  labeled 0  elapsed 0s  ETA after round 0")
    assert [line.split(":")[0] for line in plain if " done: " in line] == [
        f"round {n} done" for n in range(4)
    ]
    assert any(re.search(r"accuracy 0\.\d{3}  elapsed \S+  ETA \S+", line) for line in plain)

    # The models: in `rounds -o json`, `get`, and the predict command `get` prints, which runs.
    addresses = ["--controller", local.address("controller"), "--store", local.address("store")]
    capsys.readouterr()
    assert main(["experiments", "rounds", EXPERIMENT, "-o", "json", *addresses]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["round"] for r in rows] == [0, 1, 2, 3] and all(r["model_uri"] for r in rows)
    assert [r["model"] for r in rows] == [f"experiments/{EXPERIMENT}/rounds/{n}" for n in range(4)]
    assert all(isinstance(r["labeled"], int) and 0 < r["test_accuracy"] <= 1 for r in rows)
    assert main(["experiments", "get", EXPERIMENT, *addresses]) == 0
    summary = capsys.readouterr().out
    assert f"latest model:  {rows[-1]['model_uri']}" in summary
    model = f"experiments/{EXPERIMENT}/rounds/3"
    hint = f"labelloop predict --model {model} --input ROWS.csv --output predictions.csv"
    assert f"use a round's model: {hint}" in summary

    new_rows = pd.read_csv(write_tabular_digits(workdir / "new", rows=12)).drop(columns=["label"])
    new_rows.to_csv(workdir / "rows.csv", index=False)
    monkeypatch.setenv("LABELLOOP_STORAGE_BACKEND", "local")
    monkeypatch.setenv("LABELLOOP_STORAGE_ROOT", str(local.settings.storage.root))
    argv = hint.split()[1:]
    argv[argv.index("ROWS.csv")] = str(workdir / "rows.csv")
    argv[argv.index("predictions.csv")] = str(workdir / "predictions.csv")
    assert main([*argv, *addresses]) == 0, capsys.readouterr().err
    assert len(pd.read_csv(workdir / "predictions.csv")) == 12


def test_watch_shows_the_epochs_of_a_fine_tuning_round(
    everything: tuple[LocalCluster, LabelLoopClient, Path],
) -> None:
    local, client, _ = everything
    epochs = 5000  # a small MLP on 20 examples takes milliseconds an epoch: the time limit ends the fit
    hyperparameters = {"model.names": "[numerical_mlp]", "optim.max_epochs": epochs, "optim.patience": epochs}
    client.create_experiment(
        "tuned",
        dataset="digits",
        per_class=2,
        batch_size=10,
        max_rounds=1,
        trainer=trainer_config(
            hyperparameters=hyperparameters, time_limit_seconds=6, num_gpus=0, mode="fine-tune"
        ),
        seed=3,
    )
    on_terminal = Watcher(local, terminal=True, experiment="tuned")
    piped = Watcher(local, terminal=False, experiment="tuned")
    deadline = time.monotonic() + 60
    while "round 0" not in on_terminal.text() or "round 0" not in piped.text():
        assert time.monotonic() < deadline, (on_terminal.text(), piped.text())
        time.sleep(0.1)
    client.start("tuned")
    code, shown = on_terminal.finish(600)
    assert code == 0, shown
    code, lines = piped.finish(600)
    assert code == 0, lines

    # "epoch k/5000" while the round trains, and the message it came in no longer repeats it.
    trained = re.compile(rf"^round 0/1  train \d+%  epoch (\d+)/{epochs}  fitting \(\d+ s\)  labeled 20  ")
    statuses = [s.strip() for s in re.split(r"\r\x1b\[K|\r?\n", shown)]
    seen = [int(m[1]) for s in statuses if (m := trained.match(s))]
    assert seen and all(1 <= e <= epochs for e in seen), "\n".join(statuses)
    assert seen == sorted(seen) and len(set(seen)) > 1, seen  # it moves on, never back
    assert ESCAPE not in lines
    assert any(trained.match(line) for line in lines.splitlines()), lines
    after = lines.split("round 0 done")[1].split("round 1/1  train")[0]
    assert "round 1/1" in after and "epoch" not in after  # past training, no epoch is shown
