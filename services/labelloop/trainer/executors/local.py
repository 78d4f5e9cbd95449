"""Runs jobs one at a time in a long-lived worker process on this machine.

The worker imports AutoGluon once (about 10 s) and then takes jobs from a queue, so rounds do not
pay for the import. Jobs wait FIFO. Cancelling the running job terminates the worker; a fresh one
starts for the next job. The worker's death fails its job with the reason. A restarted trainer
cannot reattach to jobs of a previous worker (they died with it).
"""

from __future__ import annotations

import collections
import logging
import multiprocessing as mp
import queue
import threading
from dataclasses import replace
from typing import Any, Self

from labelloop.core.config import Settings
from labelloop.core.errors import NotFound
from labelloop.core.storage import ObjectStore, open_store
from labelloop.trainer.contract import JobSpec, JobState, JobStatus
from labelloop.trainer.executors.base import Executor

log = logging.getLogger(__name__)
_POLL_SECONDS = 0.2


def _worker_main(env: dict[str, str], jobs: Any, events: Any) -> None:
    """The worker process: one job at a time, events back to the parent."""
    import os

    os.environ.update(env)
    from labelloop.core.logs import setup_logging
    from labelloop.trainer.job import offline_environment, run_job

    settings = Settings.from_env()
    setup_logging("trainer-worker", settings.log_level, settings.log_format)
    offline_environment()
    store = open_store(settings.storage)
    import logging

    import autogluon.multimodal  # noqa: F401 - paid once per worker, not per job

    # Lightning installs its own stderr handlers at import: route its records to our JSON handler.
    for name in ("lightning", "lightning.pytorch", "lightning.fabric"):
        logging.getLogger(name).handlers.clear()
        logging.getLogger(name).propagate = True

    events.put(("ready", "", None))
    while (text := jobs.get()) is not None:
        spec = JobSpec.from_json(text)
        events.put(("running", spec.job_id, None))

        def report(progress: float, message: str, job_id: str = spec.job_id) -> None:
            events.put(("progress", job_id, (progress, message)))

        try:
            result = run_job(spec, store, report, settings.cache_dir)
            events.put(("succeeded", spec.job_id, result))
        except BaseException as error:
            logging.getLogger(__name__).exception("job %s failed", spec.job_id)
            events.put(("failed", spec.job_id, f"{type(error).__name__}: {error}"))


class _Worker:
    def __init__(self, settings: Settings):
        ctx = mp.get_context("spawn")  # fork would copy the gRPC server's threads
        self.jobs, self.events = ctx.Queue(), ctx.Queue()  # fresh per worker: a killed one may corrupt them
        self.process = ctx.Process(
            target=_worker_main,
            args=(settings.to_env(), self.jobs, self.events),
            name="labelloop-trainer-worker",
            daemon=True,
        )
        self.process.start()

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.is_alive():
            self.process.terminate()
            self.process.join(timeout)
            if self.process.is_alive():
                self.process.kill()
        self.process.join(timeout)
        for q in (self.jobs, self.events):
            q.cancel_join_thread()
            q.close()


class LocalExecutor(Executor):
    def __init__(self, settings: Settings, store: ObjectStore | None = None, prestart: bool = False):
        self.settings = settings
        self.store = store or open_store(settings.storage)
        self._lock = threading.Condition()
        self._statuses: dict[str, JobStatus] = {}
        self._specs: dict[str, JobSpec] = {}
        self._pending: collections.deque[str] = collections.deque()
        self._running: str | None = None
        self._cancel_requested: set[str] = set()
        self._closed = False
        self._worker: _Worker | None = _Worker(settings) if prestart else None
        self._thread = threading.Thread(target=self._dispatch, name="local-executor", daemon=True)
        self._thread.start()

    @classmethod
    def from_settings(cls, settings: Settings, store: ObjectStore) -> Self:
        return cls(settings, store, prestart=True)  # import AutoGluon before round 1 needs it

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
                return
            self._cancel_requested.add(job_id)
            self._lock.notify_all()
            self._lock.wait_for(lambda: self._statuses[job_id].state.done, timeout)

    def reattach(self, spec: JobSpec) -> bool:
        return False  # the job died with the previous trainer's worker process

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

    # Dispatcher thread ----------------------------------------------------------------------

    def _finish(self, job_id: str, state: JobState, **fields: Any) -> None:
        status = self._statuses[job_id]
        self._statuses[job_id] = replace(status, state=state, **fields)
        self._lock.notify_all()

    def _dispatch(self) -> None:
        while True:
            with self._lock:
                self._lock.wait_for(lambda: self._closed or bool(self._pending))
                if self._closed:
                    return
                job_id = self._pending.popleft()
                self._running = job_id
                self._statuses[job_id] = replace(self._statuses[job_id], message="starting worker")
            try:
                self._run_one(job_id)
            except Exception as error:  # never let the dispatcher die with a job in flight
                log.exception("local executor failed on job %s", job_id)
                with self._lock:
                    self._finish(job_id, JobState.FAILED, error=f"executor error: {error}")
            finally:
                with self._lock:
                    self._running = None

    def _run_one(self, job_id: str) -> None:
        if self._worker is None or not self._worker.process.is_alive():
            self._worker = _Worker(self.settings)
        worker = self._worker
        worker.jobs.put(self._specs[job_id].to_json())
        while True:
            with self._lock:
                if job_id in self._cancel_requested or self._closed:
                    self._kill_for_cancel(job_id, worker)
                    return
            try:
                kind, event_job, payload = worker.events.get(timeout=_POLL_SECONDS)
            except queue.Empty:
                if not worker.process.is_alive():
                    self._worker_died(job_id, worker)
                    return
                continue
            if event_job != job_id:
                continue  # "ready", or a late event of a job cancelled on an old worker
            with self._lock:
                status = self._statuses[job_id]
                if kind == "running":
                    self._statuses[job_id] = replace(status, state=JobState.RUNNING, message="running")
                elif kind == "progress":
                    progress, message = payload
                    self._statuses[job_id] = replace(
                        status, state=JobState.RUNNING, progress=float(progress), message=message
                    )
                elif kind == "succeeded":
                    self._finish(job_id, JobState.SUCCEEDED, progress=1.0, message="done", result=payload)
                    return
                elif kind == "failed":
                    self._finish(job_id, JobState.FAILED, error=payload, message="failed")
                    return
                self._lock.notify_all()

    def _kill_for_cancel(self, job_id: str, worker: _Worker) -> None:
        worker.stop()
        self._worker = None
        # The job may have written result.json just before it was killed: a cancelled job has none.
        spec = self._specs[job_id]
        self.store.delete(spec.output_prefix.rstrip("/") + "/result.json")
        with self._lock:
            self._cancel_requested.discard(job_id)
            self._finish(job_id, JobState.CANCELLED, message="cancelled")

    def _worker_died(self, job_id: str, worker: _Worker) -> None:
        code = worker.process.exitcode
        worker.stop()
        self._worker = None
        reason = f"the trainer worker process died (exit code {code})"
        if code is not None and code < 0:
            reason += f": killed by signal {-code}" + (" (out of memory?)" if code == -9 else "")
        with self._lock:
            self._finish(job_id, JobState.FAILED, error=reason, message="failed")
