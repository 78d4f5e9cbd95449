"""Runs jobs one at a time in a long-lived worker process on this machine.

The worker imports AutoGluon once (about 10 s) and then takes jobs from a queue, so rounds do not
pay for the import; the trainer reports healthy only once the first worker is ready (wait_ready),
so round 0 does not pay for it either. Jobs wait FIFO. Cancelling the running job terminates the
worker; a fresh one starts for the next job. The worker's death fails its job with the reason. A
restarted trainer cannot reattach to jobs of a previous worker (they died with it).

Nothing here sleeps or polls: the worker sends its events (ready, running, progress, done) through a
pipe that a reader thread blocks on, its death shows as the pipe's end of file, and each change wakes
the dispatcher and the trainer's listener at once.
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import os
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from multiprocessing.connection import Connection
from typing import Any, Self

from labelloop.core.config import Settings
from labelloop.core.errors import NotFound
from labelloop.core.storage import ObjectStore, open_store
from labelloop.trainer import threads
from labelloop.trainer.contract import JobSpec, JobState, JobStatus
from labelloop.trainer.executors.base import Executor

log = logging.getLogger(__name__)
# After the worker's pipe closed: how long its exit code may take to appear.
_EXIT_SECONDS = 5.0


# How often a worker checks that its trainer is still there.
_ORPHAN_CHECK_SECONDS = 1.0


def _exit_when_orphaned(trainer_pid: int) -> None:
    """A worker whose trainer died (SIGKILL, OOM) exits: nothing would ever collect its work, and it
    holds the memory of a loaded AutoGluon. Its parent changes when the trainer dies."""
    while os.getppid() == trainer_pid:
        time.sleep(_ORPHAN_CHECK_SECONDS)
    os._exit(1)


def _worker_main(
    env: dict[str, str], jobs: Any, events: Connection, trainer_pid: int, torch_threads: int
) -> None:
    """The worker process: one job at a time, events back to the parent."""
    orphan_check = threading.Thread(target=_exit_when_orphaned, args=(trainer_pid,), daemon=True)
    orphan_check.start()
    os.environ.update(env)
    from labelloop.core.logs import setup_logging
    from labelloop.trainer.job import failure_message, offline_environment, run_job

    settings = Settings.from_env()
    setup_logging("trainer-worker", settings.log_level, settings.log_format)
    offline_environment()
    store = open_store(settings.storage)
    import logging

    import autogluon.multimodal  # noqa: F401 - paid once per worker, not per job

    threads.use(torch_threads)  # not one per core: the services share them (threads.py)

    # Lightning installs its own stderr handlers at import: route its records to our JSON handler.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

    sending = threading.Lock()  # the fit's heartbeat thread reports too; a Connection is not thread-safe

    def emit(kind: str, job_id: str, payload: Any) -> None:
        with sending:
            events.send((kind, job_id, payload))

    emit("ready", "", None)
    while (text := jobs.get()) is not None:
        spec = JobSpec.from_json(text)
        emit("running", spec.job_id, None)

        def report(progress: float, message: str, job_id: str = spec.job_id) -> None:
            emit("progress", job_id, (progress, message))

        try:
            result = run_job(spec, store, report, settings.cache_dir)
            emit("succeeded", spec.job_id, result)
        except BaseException as error:
            logging.getLogger(__name__).exception("job %s failed", spec.job_id)
            emit("failed", spec.job_id, failure_message(error))  # a full disk: Unavailable, not OSError


Event = tuple[str, str, Any]  # (kind, job id, payload)


class _Worker:
    """One worker process and the thread that reads its events; on_event(worker, event) gets each,
    then ("exited", "", exit code) once the process is gone."""

    def __init__(self, settings: Settings, torch_threads: int, on_event: Callable[[_Worker, Event], None]):
        ctx = mp.get_context("spawn")  # fork would copy the gRPC server's threads
        self.jobs = ctx.Queue()  # fresh per worker: a killed one may corrupt it
        receive, send = ctx.Pipe(duplex=False)
        self.process = ctx.Process(
            target=_worker_main,
            args=(settings.to_env(), self.jobs, send, os.getpid(), torch_threads),
            name="labelloop-trainer-worker",
            daemon=True,
        )
        self.process.start()
        send.close()  # the worker holds the only writing end now: its exit is our end of file
        self.ready = threading.Event()
        self.exited = False
        self._events = receive
        self._reader = threading.Thread(
            target=self._read, args=(on_event,), name="trainer-worker-events", daemon=True
        )
        self._reader.start()

    def _read(self, on_event: Callable[[_Worker, Event], None]) -> None:
        try:
            while True:
                try:
                    event = self._events.recv()
                except (EOFError, OSError):
                    break  # the worker exited (or was killed): nothing more will come
                if event[0] == "ready":
                    self.ready.set()
                on_event(self, event)
        finally:
            self.process.join(_EXIT_SECONDS)  # waitpid: the sentinel can close before the code is known
            self.exited = True
            self.ready.set()  # whoever waits for a ready worker learns it will not be
            on_event(self, ("exited", "", self.process.exitcode))

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
        self.process.join(timeout)
        self.jobs.cancel_join_thread()
        self.jobs.close()
        if self._reader is not threading.current_thread():
            self._reader.join(timeout)
        self._events.close()


class LocalExecutor(Executor):
    def __init__(self, settings: Settings, store: ObjectStore | None = None, prestart: bool = False):
        self.settings = settings
        # Checked here, so a bad LABELLOOP_TRAINER_THREADS stops the trainer at start with its reason.
        self.torch_threads = threads.job_threads(shared=True)
        self.store = store or open_store(settings.storage)
        self._lock = threading.Condition()
        self._statuses: dict[str, JobStatus] = {}
        self._specs: dict[str, JobSpec] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._running: str | None = None
        self._cancel_requested: set[str] = set()
        self._listeners: list[Callable[[str], None]] = []
        self._closed = False
        self._worker: _Worker | None = (
            _Worker(settings, self.torch_threads, self._on_event) if prestart else None
        )
        self._thread = threading.Thread(target=self._dispatch, name="local-executor", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore) -> Self:
        return cls(settings, store, prestart=True)  # import AutoGluon before round 0 needs it

    # Executor interface -------------------------------------------------------------------

    def submit(self, spec: JobSpec) -> None:
        with self._lock:
            if spec.job_id in self._statuses:
                return  # already submitted: submitting is idempotent
            self._statuses[spec.job_id] = JobStatus(JobState.PENDING, message="queued")
            self._specs[spec.job_id] = spec
            self._pending.append(spec.job_id)
            self._lock.notify_all()

    def status(self, job_id: str) -> JobStatus:
        with self._lock:
            if job_id not in self._statuses:
                raise NotFound(f"the local executor has no job {job_id!r} (it forgets jobs when it restarts)")
            return replace(self._statuses[job_id])

    def cancel(self, job_id: str, timeout: float = 30.0) -> None:
        """Returns once the job is stopped and its result.json, if any, is gone."""
        with self._lock:
            status = self._statuses.get(job_id)
            if status is None:
                raise NotFound(f"the local executor has no job {job_id!r}")
            if status.state.done:
                return
            if job_id in self._pending:
                self._pending.remove(job_id)
                self._finish(job_id, JobState.CANCELLED, message="cancelled before it started")
            else:
                self._cancel_requested.add(job_id)
                self._lock.notify_all()
                self._lock.wait_for(lambda: self._statuses[job_id].state.done, timeout)
                return
        self._changed(job_id)

    def reattach(self, spec: JobSpec) -> bool:
        return False  # the job died with the previous trainer's worker process

    def on_change(self, listener: Callable[[str], None]) -> bool:
        with self._lock:
            self._listeners.append(listener)
        return True

    def wait_ready(self, timeout: float | None = None) -> bool:
        """True once the worker started with the executor has imported AutoGluon (or died trying:
        then the first job starts another and fails with the reason if that one dies too)."""
        worker = self._worker
        return worker is None or worker.ready.wait(timeout)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(30)
        if self._worker is not None:
            try:
                self._worker.jobs.put(None)  # a clean exit when idle
                self._worker.process.join(2)
            finally:
                self._worker.stop()
                self._worker = None

    # Events and the dispatcher thread -------------------------------------------------------

    def _finish(self, job_id: str, state: JobState, **fields: Any) -> None:
        """Lock held; the caller tells the listeners (_changed) once it has let go of the lock."""
        status = self._statuses[job_id]
        self._statuses[job_id] = replace(status, state=state, **fields)
        self._lock.notify_all()

    def _changed(self, job_id: str) -> None:
        for listener in list(self._listeners):
            try:
                listener(job_id)
            except Exception:  # a listener's bug must not stop the worker's events
                log.exception("a listener of job %s failed", job_id)

    def _on_event(self, worker: _Worker, event: Event) -> None:
        """From the worker's reader thread: the job's new status, at once."""
        kind, job_id, payload = event
        with self._lock:
            self._lock.notify_all()  # "ready" and "exited" wake the dispatcher too
            status = self._statuses.get(job_id)
            if status is None or status.state.done or worker is not self._worker:
                return  # "ready", "exited", or a late event of a job cancelled on an old worker
            if job_id in self._cancel_requested or self._closed:
                return  # being stopped: its end (SIGTERM fails a fit) is the dispatcher's to record
            if kind == "running":
                self._statuses[job_id] = replace(status, state=JobState.RUNNING, message="running")
            elif kind == "progress":
                progress, message = payload
                self._statuses[job_id] = replace(
                    status, state=JobState.RUNNING, progress=float(progress), message=message
                )
            elif kind == "succeeded":
                self._finish(job_id, JobState.SUCCEEDED, progress=1.0, message="done", result=payload)
            elif kind == "failed":
                self._finish(job_id, JobState.FAILED, error=payload, message="failed")
        self._changed(job_id)

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or bool(self._pending))
                if self._closed:
                    return
                job_id = self._pending.popleft()
                self._running = job_id
                self._statuses[job_id] = replace(self._statuses[job_id], message="starting worker")
            self._changed(job_id)
            try:
                self._run_one(job_id)
            except Exception as error:  # never let the dispatcher die with a job in flight
                log.exception("local executor failed on job %s", job_id)
                with self._lock:
                    self._finish(job_id, JobState.FAILED, error=f"executor error: {error}")
                self._changed(job_id)
            finally:
                with self._lock:
                    self._running = None

    def _run_one(self, job_id: str) -> None:
        if self._worker is None or self._worker.exited:
            if self._worker is not None:
                self._worker.stop()
            self._worker = _Worker(self.settings, self.torch_threads, self._on_event)
        worker = self._worker
        worker.jobs.put(self._specs[job_id].to_json())
        with self._lock:
            self._lock.wait_for(
                lambda: (
                    self._statuses[job_id].state.done
                    or job_id in self._cancel_requested
                    or self._closed
                    or worker.exited
                )
            )
            if self._statuses[job_id].state.done:
                return
            stopping = job_id in self._cancel_requested or self._closed
        if stopping:
            self._kill_for_cancel(job_id, worker)
        else:
            self._worker_died(job_id, worker)

    def _kill_for_cancel(self, job_id: str, worker: _Worker) -> None:
        worker.stop()
        self._worker = None
        # The job may have written result.json just before it was killed: a cancelled job has none.
        spec = self._specs[job_id]
        self.store.delete(spec.output_prefix.rstrip("/") + "/result.json")
        with self._lock:
            self._cancel_requested.discard(job_id)
            self._finish(job_id, JobState.CANCELLED, message="cancelled")
        self._changed(job_id)

    def _worker_died(self, job_id: str, worker: _Worker) -> None:
        worker.process.join(_EXIT_SECONDS)
        code = worker.process.exitcode
        worker.stop()
        self._worker = None
        # "Unavailable": a death (the OOM killer, a node's trouble) can go away, so the controller trains
        # again and, past its attempts, stops resumably instead of failing the experiment for good.
        reason = f"Unavailable: the trainer worker process died (exit code {code})"
        if code is not None and code < 0:
            reason += f": killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
        with self._lock:
            self._finish(job_id, JobState.FAILED, error=reason, message="failed")
        self._changed(job_id)
