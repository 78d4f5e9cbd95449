"""One runner thread per running experiment: started on Start/Resume/recovery, gone once the
experiment leaves RUNNING, started again if it was resumed while its old thread was still finishing."""

from __future__ import annotations

import threading

from labelloop.controller.clients import Stubs
from labelloop.controller.context import RoundContext
from labelloop.controller.entry import Entry
from labelloop.controller.runner import run_rounds
from labelloop.core import metrics
from labelloop.core.storage import ObjectStore
from labelloop.v1 import experiments_pb2

RUNNING = experiments_pb2.EXPERIMENT_STATE_RUNNING


class Runners:
    def __init__(self, store: ObjectStore, stubs: Stubs, poll_seconds: float = 0.2, crash_at: str = ""):
        self.store, self.stubs = store, stubs
        self.poll_seconds = poll_seconds
        self.crash_at = crash_at  # see context.CRASH_AT_ENV

    def spawn(self, entry: Entry) -> None:
        """Starts the runner thread unless one is still finishing a step. Caller holds the lock."""
        if entry.thread is not None and entry.thread.is_alive():
            return  # a paused runner still finishing its step sees RUNNING again and goes on
        metrics.EXPERIMENT_STATE.labels(entry.id).set(1)
        context = RoundContext(
            entry, self.store, self.stubs, poll_seconds=self.poll_seconds, crash_at=self.crash_at
        )
        entry.thread = threading.Thread(
            target=self._run, args=(entry, context), name=f"runner-{entry.id}", daemon=True
        )
        entry.thread.start()

    def _run(self, entry: Entry, context: RoundContext) -> None:
        try:
            run_rounds(context)
        finally:
            with entry.lock:
                if entry.thread is threading.current_thread():
                    entry.thread = None
                    if entry.state == RUNNING:  # resumed while this thread was stopping
                        self.spawn(entry)
