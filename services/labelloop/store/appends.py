"""Appends to the annotation logs, many at once, each request stored exactly once (group commit).

The store is the only writer of its logs, so what this process knows of a log - its last sequence
number, the entry of every request id and the annotators - is learnt once from the store (in a fresh
process, e.g. after a restart) and then kept by this process's own appends.

An append claims its request id and joins the log's queue under a short per-log lock without I/O.
If fewer than MAX_WRITERS (one) writes are under way it leads: it takes the whole queue, writes it as one
object (annotations.py) and answers every request in it; requests that queue meanwhile are the next
leader's batch. So one object write serves every append that arrived during the previous one, instead
of one write (under a dataset-wide lock) per request.

- A retry of a request whose object is being written waits for that write and then answers as a retry
  (or stores it, if that write failed).
- A write that failed leaves its request ids "unknown": the object may have landed. The next request
  with such an id asks the store whether the object exists before storing anything again.
- Objects are immutable, so their parsed bodies are cached for reads of the whole log.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from labelloop.core.errors import AlreadyExists, InvalidArgument, NotFound
from labelloop.core.layout import annotations_prefix
from labelloop.core.storage import ObjectStore
from labelloop.store.annotations import (
    MAX_ANNOTATORS_PER_SET,
    LogEntry,
    differences,
    entries,
    entry_body,
    read_requests,
)
from labelloop.store.models import Annotation, now

# One log of one dataset version: (dataset id, its create_time, annotation set). A re-created
# dataset has a new create_time, so nothing learnt about its predecessor is reused.
LogId = tuple[str, str, str]
Requests = list[tuple[str, list[Annotation]]]

READ_THREADS = 8  # parallel reads of objects when a whole log is read
CACHED_OBJECTS = 100_000  # parsed objects kept in memory
# Batches of one log written at the same time. One gives the largest batches: at 50 clients on 2 cores
# (bench.append_load) 500 requests/s and 0.9 ms of store CPU a request, against 360/s and 1.5 ms with 4.
MAX_WRITERS = 1


@dataclass
class _Waiting:
    """A request in the queue or being written."""

    request_id: str
    annotations: Sequence[Annotation]
    wake: threading.Event = field(default_factory=threading.Event)  # answered, or to lead
    finished: threading.Event = field(default_factory=threading.Event)  # its batch is answered
    lead: bool = False  # woken to write the next batch
    stored: bool | None = None  # True: written; None: its key was taken, append again
    error: BaseException | None = None


@dataclass
class _Unknown:
    """A request id whose write failed: the object may or may not exist."""

    entry: LogEntry


@dataclass
class _Tail:
    """What this process knows of one log."""

    seq: int
    requests: dict[str, LogEntry | _Waiting | _Unknown]
    # Never fewer than the log's annotators: a failed write may leave one counted that was not stored.
    annotators: set[str]
    queue: list[_Waiting] = field(default_factory=list)
    writers: int = 0  # batches being written


class AnnotationLogs:
    def __init__(self, store: ObjectStore):
        self.store = store
        self._guard = threading.Lock()
        self._locks: dict[LogId, threading.Lock] = {}
        self._tails: dict[LogId, _Tail] = {}
        self._cache: OrderedDict[tuple[LogId, str], Requests] = OrderedDict()

    # Reading ------------------------------------------------------------------------------------

    def read(self, log: LogId) -> list[Annotation]:
        """The whole log in append order (objects read in parallel, each at most once)."""
        return [a for _, annotations in self._read_all(log)[1] for a in annotations]

    def _read_all(self, log: LogId) -> tuple[list[LogEntry], Requests]:
        listed = entries(self.store, log[0], log[2])
        with self._guard:
            cached = [self._cache.get((log, e.key)) for e in listed]
        unread = [e for e, body in zip(listed, cached, strict=True) if body is None]
        read: dict[str, Requests] = {}
        if unread:  # a pool only for objects not read before: a warm log costs no threads
            with ThreadPoolExecutor(min(READ_THREADS, len(unread))) as pool:
                bodies_read = pool.map(lambda e: self._requests(log, e), unread)
                read = dict(zip([e.key for e in unread], bodies_read, strict=True))
        bodies = [body if body is not None else read[e.key] for e, body in zip(listed, cached, strict=True)]
        requests = [r for body in bodies for r in body]
        keyed = [LogEntry(e.seq, r, e.key) for e, body in zip(listed, bodies, strict=True) for r, _ in body]
        return keyed, requests

    def _requests(self, log: LogId, entry: LogEntry) -> Requests:
        with self._guard:
            cached = self._cache.get((log, entry.key))
        if cached is not None:
            return cached
        body = read_requests(self.store, entry)
        with self._guard:
            self._cache[(log, entry.key)] = body
            while len(self._cache) > CACHED_OBJECTS:
                self._cache.popitem(last=False)
        return body

    def forget(self, dataset: str) -> None:
        """Drops what is known of a deleted dataset's logs."""
        with self._guard:
            for log in [k for k in self._tails if k[0] == dataset]:
                del self._tails[log]
            for key in [k for k in self._cache if k[0][0] == dataset]:
                del self._cache[key]

    # Appending ----------------------------------------------------------------------------------

    def append(self, log: LogId, request_id: str, annotations: Sequence[Annotation]) -> bool:
        """Stores one request unless its request_id is already in the log; returns whether it stored.

        A request id already stored with other content is refused (AlreadyExists, saying what
        differs): a retry must resend the same request. The caller holds the dataset's lock shared,
        so the dataset is not deleted meanwhile.
        """
        while True:
            with self._lock(log):
                tail = self._tail(log)
                known = tail.requests.get(request_id)
                if known is None:
                    mine = self._enqueue(log, tail, request_id, annotations)
                    if tail.writers < MAX_WRITERS:
                        mine.lead = True
                        tail.writers += 1
                    break
            if isinstance(known, _Waiting):
                known.finished.wait()  # then look again: stored, or failed and unknown
            elif isinstance(known, _Unknown):
                self._settle(log, request_id, known)
            else:
                return self._retried(log, known, annotations)
        if not mine.lead:
            mine.wake.wait()  # written by a leader, or woken to lead the next batch
        if mine.lead:  # writes what is queued (another leader may have taken this request already)
            self._write_batch(log, tail)
        mine.finished.wait()
        if mine.error is not None:
            raise mine.error
        return mine.stored if mine.stored is not None else self.append(log, request_id, annotations)

    def _lock(self, log: LogId) -> threading.Lock:
        with self._guard:
            return self._locks.setdefault(log, threading.Lock())

    def _tail(self, log: LogId) -> _Tail:
        """The log's tail, learnt from the store on first use (under the log's lock)."""
        with self._guard:
            tail = self._tails.get(log)
        if tail is not None:
            return tail
        keyed, requests = self._read_all(log)
        known: dict[str, LogEntry | _Waiting | _Unknown] = {}
        for entry in keyed:
            known.setdefault(entry.request_id, entry)
        tail = _Tail(
            seq=max((e.seq for e in keyed), default=0),
            requests=known,
            annotators={a.annotator for _, annotations in requests for a in annotations},
        )
        with self._guard:
            self._tails[log] = tail
        return tail

    def _enqueue(
        self, log: LogId, tail: _Tail, request_id: str, annotations: Sequence[Annotation]
    ) -> _Waiting:
        """Claims the request id and queues the request; checks the annotator bound first."""
        new = {a.annotator for a in annotations} - tail.annotators
        if len(tail.annotators) + len(new) > MAX_ANNOTATORS_PER_SET:
            raise InvalidArgument(
                f"annotation set {log[2]!r} has {len(tail.annotators)} annotators and this request adds "
                f"{len(new)} more: at most {MAX_ANNOTATORS_PER_SET} annotators per annotation set "
                "(each becomes a column of every snapshot's annotator matrix); use another annotation set"
            )
        tail.annotators |= new
        mine = _Waiting(request_id, annotations)
        tail.requests[request_id] = mine
        tail.queue.append(mine)
        return mine

    def _write_batch(self, log: LogId, tail: _Tail) -> None:
        """Writes every queued request as one object, answers them, and hands the lead on."""
        with self._lock(log):
            batch, tail.queue = tail.queue, []
            if not batch:
                self._hand_on(tail)
                return
            tail.seq += 1
            key = f"{annotations_prefix(log[0], log[2])}{tail.seq:08d}-{batch[0].request_id}.json"
            seq = tail.seq
        body = entry_body([(w.request_id, w.annotations) for w in batch], now())
        error: BaseException | None = None
        wrote = False
        try:
            # Exclusive: never overwrites, e.g. an object a store process wrote before.
            wrote = self.store.create_exclusive(key, body)
        except BaseException as failed:  # answered to every request of the batch
            error = failed
        with self._lock(log):
            for waiting in batch:
                entry = LogEntry(seq, waiting.request_id, key)
                if tail.requests.get(waiting.request_id) is waiting:
                    tail.requests[waiting.request_id] = _Unknown(entry) if error else entry
                waiting.error, waiting.stored = error, (True if wrote else None)
            if not wrote and error is None:  # not this process's object: what it knows is out of date
                with self._guard:
                    self._tails.pop(log, None)
            self._hand_on(tail)
        for waiting in batch:
            waiting.finished.set()
            waiting.wake.set()

    @staticmethod
    def _hand_on(tail: _Tail) -> None:
        """Frees this writer's slot; the first queued request not leading yet writes next (under the
        log's lock)."""
        tail.writers -= 1
        successor = next((w for w in tail.queue if not w.lead), None)
        if successor is not None and tail.writers < MAX_WRITERS:
            successor.lead = True
            tail.writers += 1
            successor.wake.set()

    def _settle(self, log: LogId, request_id: str, unknown: _Unknown) -> None:
        """Finds out whether a failed write landed after all."""
        landed = self.store.exists(unknown.entry.key)
        with self._lock(log):
            tail = self._tail(log)
            if tail.requests.get(request_id) is unknown:
                if landed:
                    tail.requests[request_id] = unknown.entry
                else:
                    del tail.requests[request_id]

    def _retried(self, log: LogId, entry: LogEntry, annotations: Sequence[Annotation]) -> bool:
        """A request id already stored: a retry (False) if the content is the same."""
        try:
            stored = dict(self._requests(log, entry))[entry.request_id]
        except NotFound:  # deleted under us: treat as stored (the dataset is going away)
            return False
        if difference := differences(stored, annotations):
            raise AlreadyExists(
                f"request_id {entry.request_id!r} was already used in annotation set {log[2]!r} "
                f"for a different request ({difference}): use a new request_id for new labels, or "
                "resend exactly the same request to retry it"
            )
        return False
