"""Showing a running experiment to people: `watch`'s status line, and the demo's rounds table.

On a terminal one line is redrawn in place (carriage return and erase-line) and each finished round
leaves a line behind; anywhere else (a pipe, a file, CI logs) plain lines are printed, without
escape codes, one per change of stage and at most one per `interval` seconds within a stage.
The ETA comes from the durations of the rounds already done: a mean of the latest ones (round 0,
which also embeds the pool once, only while no other round is done) times the rounds left, less
the time the current round has run.
"""

from __future__ import annotations

import math
import queue
import re
import shutil
import sys
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, TextIO, cast

from labelloop.client import LabelLoopClient, stage_name, state_name
from labelloop.core.api import TERMINAL_EXPERIMENT_STATES
from labelloop.v1 import experiments_pb2

# The controller reports trainer progress as "train 45%: <trainer message>" (controller/training.py).
_PERCENT = re.compile(r"^(\w+) (\d+)%(?::\s*(.*))?$")
# The epoch in the trainer's message ("fitting, epoch 3/10 (42 s)"): shown from the round's
# training_epoch fields instead, so the message loses it.
_EPOCH = re.compile(r",?\s*\bepoch\s+\d+(?:/\d+)?", re.IGNORECASE)
DONE = experiments_pb2.ROUND_STAGE_DONE
TRAIN = experiments_pb2.ROUND_STAGE_TRAIN
RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING
CREATED = experiments_pb2.EXPERIMENT_STATE_CREATED
PAUSED = experiments_pb2.EXPERIMENT_STATE_PAUSED
ENDED = TERMINAL_EXPERIMENT_STATES
ROUNDS_IN_ETA = 3  # the latest rounds whose mean duration predicts the next ones


def evaluated(experiment: experiments_pb2.Experiment) -> bool:
    """True once some round's model was evaluated: before that latest_test_accuracy means nothing."""
    return experiment.rounds_completed > 0 or experiment.current_stage > experiments_pb2.ROUND_STAGE_EVALUATE


def duration(seconds: float) -> str:
    """75 -> "1m15s", 3700 -> "1h01m", 8 -> "8s"."""
    seconds = max(round(seconds), 0)
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def rounds_total(experiment: experiments_pb2.Experiment) -> int | None:
    """Rounds the experiment will run (round 0 plus max_rounds), or an estimate from the label
    budget; None when only a target accuracy stops it."""
    config = experiment.config
    rule = config.stopping_rule
    totals = []
    if rule.max_rounds:
        totals.append(rule.max_rounds + 1)
    if rule.label_budget and config.batch_size:
        left = max(rule.label_budget - experiment.labels_used, 0)
        totals.append(experiment.current_round + 1 + math.ceil(left / config.batch_size))
    return min(totals) if totals else None


def eta_seconds(
    experiment: experiments_pb2.Experiment, durations: list[float], current_elapsed: float
) -> float | None:
    """Seconds until the experiment ends, from the finished rounds' durations; None when unknown."""
    total = rounds_total(experiment)
    if not durations or total is None:
        return None
    recent = (durations[1:] or durations)[-ROUNDS_IN_ETA:]
    per_round = sum(recent) / len(recent)
    left = max(total - experiment.rounds_completed, 0)
    return max(per_round * left - current_elapsed, 0.0) if left else 0.0


@dataclass
class Status:
    """What one status line shows; `line()` renders it."""

    experiment: experiments_pb2.Experiment
    round: experiments_pb2.Round
    durations: list[float] = field(default_factory=list)
    elapsed: float = 0.0
    round_elapsed: float = 0.0

    def line(self) -> str:
        experiment, current = self.experiment, self.round
        total = rounds_total(experiment)
        parts = [f"round {current.number}" + (f"/{total - 1}" if total else "")]
        stage = stage_name(current.stage or experiment.current_stage)
        match = _PERCENT.match(current.progress_message)
        detail = (match[3] or "") if match else current.progress_message
        if experiment.state != RUNNING and (experiment.state not in ENDED or not current.stage):
            stage = {CREATED: "not started", PAUSED: "paused"}.get(
                experiment.state, state_name(experiment.state)
            )
        parts.append(f"{stage} {match[2]}%" if match else stage)
        if current.training_epoch and (current.stage or experiment.current_stage) == TRAIN:
            most = current.training_max_epochs
            parts.append(f"epoch {current.training_epoch}" + (f"/{most}" if most else ""))
        detail = _EPOCH.sub("", detail).strip(" ,;")
        if detail:
            parts.append(detail)
        parts.append(f"labeled {experiment.labeled_count}")
        if evaluated(experiment):
            parts.append(f"accuracy {experiment.latest_test_accuracy:.3f}")
        parts.append(f"elapsed {duration(self.elapsed)}")
        eta = eta_seconds(experiment, self.durations, self.round_elapsed)
        if experiment.state in ENDED:
            pass  # no ETA for what has ended
        elif eta is not None:
            parts.append(f"ETA {duration(eta)}")
        elif total is not None:
            parts.append("ETA after round 0")
        return "  ".join(parts)


class _Printer:
    """Writes status lines: redrawn in place on a terminal, appended (throttled) elsewhere."""

    def __init__(self, out: TextIO, terminal: bool, interval: float):
        self.out, self.terminal, self.interval = out, terminal, interval
        self.key: tuple[int, int] | None = None
        self.last_text = ""
        self.last_time = 0.0
        self.drawn = False

    def status(self, key: tuple[int, int], text: str) -> None:
        if self.terminal:
            width = shutil.get_terminal_size((120, 24)).columns - 1
            self.out.write("\r\x1b[K" + text[:width])
            self.drawn = True
        else:
            now = time.monotonic()
            if key == self.key and (text == self.last_text or now - self.last_time < self.interval):
                return
            self.out.write(text + "\n")
            self.key, self.last_text, self.last_time = key, text, now
        self.out.flush()

    def permanent(self, text: str) -> None:
        """A line that stays (a finished round)."""
        if self.terminal and self.drawn:
            self.out.write("\r\x1b[K")
        self.out.write(text + "\n")
        self.drawn = False
        self.out.flush()

    def close(self) -> None:
        if self.terminal and self.drawn:
            self.out.write("\n")
            self.out.flush()


def _seconds_since(stamp: Any) -> float:
    return max(time.time() - stamp.ToNanoseconds() / 1e9, 0.0) if stamp.seconds else 0.0


def _elapsed(experiment: experiments_pb2.Experiment, rounds: list[experiments_pb2.Round]) -> float:
    """Since round 0 started; for an experiment that has ended, until it ended."""
    if not rounds or not rounds[0].start_time.seconds:
        return 0.0
    if experiment.state in ENDED:
        end = experiment.update_time.ToNanoseconds() / 1e9
        return max(end - rounds[0].start_time.ToNanoseconds() / 1e9, 0.0)
    return _seconds_since(rounds[0].start_time)


Update = tuple[experiments_pb2.Experiment, experiments_pb2.Round]


def _updates(client: LabelLoopClient, experiment: str, tick: float) -> Iterator[Update | None]:
    """The watch stream's updates, and None every `tick` seconds without one (to redraw the clock).
    The stream is read by a thread; its error, if any, is raised here."""
    found: queue.Queue[Update | BaseException | object] = queue.Queue()
    end = object()

    def read() -> None:
        try:
            for update in client.watch(experiment):
                found.put(update)
        except BaseException as error:  # handed to the caller, who prints it as one line
            found.put(error)
        found.put(end)

    threading.Thread(target=read, name="watch", daemon=True).start()
    while True:
        try:
            item = found.get(timeout=tick)
        except queue.Empty:
            yield None
            continue
        if item is end:
            return
        if isinstance(item, BaseException):
            raise item
        yield cast("Update", item)


def watch(
    client: LabelLoopClient,
    experiment: str,
    out: TextIO | None = None,
    terminal: bool | None = None,
    interval: float = 10.0,
) -> experiments_pb2.Experiment:
    """Shows progress until the experiment ends; returns it as it ended. The clock (elapsed, ETA)
    moves every second on a terminal, every `interval` seconds in plain lines."""
    out = out or sys.stdout
    on_terminal = out.isatty() if terminal is None else terminal
    printer = _Printer(out, on_terminal, interval)
    current = client.get(experiment)
    round_ = experiments_pb2.Round()
    rounds = client.list_rounds(experiment)
    completed = current.rounds_completed
    try:
        for update in _updates(client, experiment, 1.0 if on_terminal else interval):
            if update is not None:
                current, round_ = update
            if current.rounds_completed != completed or not rounds:
                rounds = client.list_rounds(experiment)
                for done in rounds:
                    if done.stage == DONE and completed <= done.number < current.rounds_completed:
                        printer.permanent(_finished(done))
                completed = current.rounds_completed
            if update is None and (current.state != RUNNING or not round_.name):
                continue  # nothing moves, or nothing to show yet
            status = Status(
                current,
                round_,
                durations=[r.seconds for r in rounds if r.stage == DONE],
                elapsed=_elapsed(current, rounds),
                round_elapsed=_seconds_since(round_.start_time),
            )
            printer.status((round_.number, round_.stage), status.line())
    finally:
        printer.close()
    return current


def _finished(done: experiments_pb2.Round) -> str:
    accuracy = f"accuracy {done.test_accuracy:.3f}  " if done.model_uri or done.test_accuracy else ""
    return f"round {done.number} done: labeled {done.labeled_count}  {accuracy}{duration(done.seconds)}"


def watch_with_bars(client: LabelLoopClient, experiment: str) -> experiments_pb2.Experiment:
    """The demo's progress display (kept under its old name): watch() on stdout."""
    return watch(client, experiment)


def format_table(rows: Iterable[dict[str, Any]]) -> str:
    """round | labeled | test accuracy | seconds, one line per round."""
    lines = [f"{'round':>5}  {'labeled':>7}  {'test accuracy':>13}  {'seconds':>8}"]
    for row in rows:
        lines.append(
            f"{row['round']:>5}  {row['labeled']:>7}  {row['test_accuracy']:>13.4f}  {row['seconds']:>8.1f}"
        )
    return "\n".join(lines)
