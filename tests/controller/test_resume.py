"""An experiment survives an S3 outage longer than the clients' retries: it stops on the fault (and says
so), its stored record and the controller's answers agree throughout, reads answer at once while writes
are stuck, and once the S3 server is back ResumeExperiment finishes it with every label stored once and
one training run per round. A failure that cannot go away is refused by ResumeExperiment.

The S3 server is a real SeaweedFS, stopped and started again on the same data. The controller reaches
it through a TCP link that the test cuts first, so the outage hits the controller at a known moment
(the commit of a step whose effects are done); then the whole server stops.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import grpc
import pandas as pd
import pytest
from labelloop.cli.local import SERVICES, LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core import layout
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.core.storage import S3Store
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb
from labelloop.v1 import trainer_pb2, trainer_pb2_grpc

from tests.support.cluster import LABEL_COLUMN, client_for, cluster, fast_trainer, write_tabular_digits
from tests.support.seaweedfs import S3Server, restart_seaweedfs, start_seaweedfs

pytestmark = pytest.mark.integration

EXPERIMENT = "outage"
INITIAL, BATCH = 20, 10
WRITE_RETRY_SECONDS = 3  # the controller's retries of a write, before it stops on the fault
QUICK = 1.0  # seconds a read may take while writes are stuck


class Link:
    """A TCP forwarder to the S3 server; cut() drops its connections and refuses new ones."""

    def __init__(self, target: str):
        host, port = target.rsplit(":", 1)
        self.target = (host, int(port))
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.endpoint = f"127.0.0.1:{self.listener.getsockname()[1]}"
        self.open = True
        self.sockets: list[socket.socket] = []
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            try:
                if not self.open:
                    raise ConnectionRefusedError
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self.lock:
                self.sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(65536):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                _shut(end)

    def cut(self) -> None:
        self.open = False
        with self.lock:
            for end in self.sockets:
                _shut(end)
            self.sockets.clear()

    def restore(self) -> None:
        self.open = True

    def close(self) -> None:
        self.cut()
        self.listener.close()


def _shut(end: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed by the other side
        end.shutdown(socket.SHUT_RDWR)


def timed(read: Callable[[], Any]) -> float:
    started = time.monotonic()
    read()
    return time.monotonic() - started


def wait_until(check: Callable[[], bool], what: str, timeout: float = 300) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, f"timed out waiting until {what}"
        time.sleep(0.3)


@pytest.fixture
def outage_setup(tmp_path: Path) -> Iterator[dict[str, Any]]:
    weed_dir = tmp_path / "weed"
    servers = [start_seaweedfs(weed_dir)]
    link = Link(servers[0].endpoint)
    storage = StorageConfig(
        backend="s3", endpoint=servers[0].endpoint, bucket="outage",
        access_key=servers[0].access_key, secret_key=servers[0].secret_key,
    )  # fmt: skip
    local = cluster(tmp_path, storage, services=tuple(s for s in SERVICES if s != "controller"))
    try:
        S3Store(storage)  # creates the bucket once: services starting together would race to create it
        local.start()
        # The controller alone reaches the S3 server through the link.
        local.extra_env.update(
            {
                "LABELLOOP_S3_ENDPOINT": link.endpoint,
                "LABELLOOP_CONTROLLER_WRITE_RETRY_SECONDS": str(WRITE_RETRY_SECONDS),
            }
        )
        local.start_service("controller")
        client = client_for(local)
        yield {
            "local": local, "client": client, "link": link, "servers": servers,
            "weed_dir": weed_dir, "storage": storage, "data": tmp_path / "data",
        }  # fmt: skip
        client.close()
    finally:
        local.stop()
        link.close()
        for server in servers:
            server.stop()


def append_truth(client: LabelLoopClient, truth: dict[str, str], ids: list[str], request_id: str) -> None:
    annotations = [ds.Annotation(example_id=i, annotator="person", label=truth[i]) for i in ids]
    request = ds.AppendAnnotationsRequest(
        parent="datasets/digits", annotation_set=EXPERIMENT, request_id=request_id, annotations=annotations
    )
    client.store.AppendAnnotations(request, timeout=30)


def awaited(client: LabelLoopClient, stage: int) -> bool:
    experiment = client.get(EXPERIMENT)
    assert experiment.state == pb.EXPERIMENT_STATE_RUNNING, experiment.status_message
    current = client.list_rounds(EXPERIMENT)[experiment.current_round]
    return current.stage == stage and current.labels_awaited > 0


def test_s3_outage_stops_the_experiment_resumably_and_resume_finishes_it(
    outage_setup: dict[str, Any],
) -> None:
    local: LocalCluster = outage_setup["local"]
    client: LabelLoopClient = outage_setup["client"]
    link: Link = outage_setup["link"]
    servers: list[S3Server] = outage_setup["servers"]
    manifest = write_tabular_digits(outage_setup["data"], rows=200)
    client.create_dataset(
        "digits", str(manifest), label_column=LABEL_COLUMN, id_column="id", test_fraction=0.3, seed=7
    )
    frame = pd.read_csv(manifest, dtype={"id": str, LABEL_COLUMN: str})
    truth = dict(zip(frame["id"], frame[LABEL_COLUMN], strict=True))
    pool = ds.ListExamplesRequest(parent="datasets/digits", split=ds.SPLIT_POOL, page_size=INITIAL)
    initial = [e.example_id for e in client.store.ListExamples(pool, timeout=30).examples]
    client.create_experiment(
        EXPERIMENT, dataset="digits", strategy="least_confidence", initial_example_ids=initial,
        batch_size=BATCH, max_rounds=1, external_labelers=True, trainer=fast_trainer(), seed=3, start=True,
    )  # fmt: skip

    # People label the first set; round 0 trains, selects, and waits for its batch.
    wait_until(lambda: awaited(client, pb.ROUND_STAGE_SNAPSHOT), "the first set is awaited")
    append_truth(client, truth, initial, "people-first-set")
    wait_until(lambda: awaited(client, pb.ROUND_STAGE_LABEL), "round 0's batch is awaited", timeout=600)
    batch = list(client.list_rounds(EXPERIMENT)[0].selected_example_ids)
    assert len(batch) == BATCH

    # The controller loses the S3 server; the batch is labeled meanwhile (the store still reaches S3),
    # so the LABEL step ends and its commit cannot be written.
    link.cut()
    append_truth(client, truth, batch, "people-round-0")

    def stopping() -> bool:
        return "storage unavailable" in client.list_rounds(EXPERIMENT)[0].progress_message

    wait_until(stopping, "the controller says it stops on the fault", timeout=120)
    # What it shows is what is stored: RUNNING at round 0's LABEL step, not FAILED in memory only.
    store = S3Store(outage_setup["storage"])
    # The stage is stored in the round's record (the experiment's copy is rewritten only with other changes).
    stored = store.get_json(layout.experiment_key(EXPERIMENT))["experiment"]
    stored_round = store.get_json(layout.round_key(EXPERIMENT, 0))
    shown = client.get(EXPERIMENT)
    assert (stored["state"], stored_round["round"]["stage"], stored.get("current_round", 0)) == (
        "EXPERIMENT_STATE_RUNNING", "ROUND_STAGE_LABEL", 0,
    )  # fmt: skip
    assert (shown.state, shown.current_stage, shown.current_round) == (
        pb.EXPERIMENT_STATE_RUNNING, pb.ROUND_STAGE_LABEL, 0,
    )  # fmt: skip

    # Now the whole S3 server stops, for longer than any client's retries.
    link.restore()
    servers[-1].stop()
    outage_started = time.monotonic()
    with ThreadPoolExecutor(1) as pool_:
        # A write that cannot go through (ResumeExperiment of a stopping experiment) holds the
        # controller's lock while it retries; reads answer from the published view meanwhile.
        resuming = pool_.submit(client.resume, EXPERIMENT)
        slowest = 0.0
        while not resuming.done():
            slowest = max(
                slowest,
                timed(lambda: client.get(EXPERIMENT)),
                timed(lambda: client.list()),
                timed(lambda: client.list_rounds(EXPERIMENT)),
                timed(lambda: next(iter(client.watch(EXPERIMENT, timeout=5)))),
            )
            time.sleep(0.2)
        with pytest.raises(grpc.RpcError) as refused:
            resuming.result()
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE, refused.value.details()
    assert "is unchanged: its record cannot be written now" in refused.value.details()
    assert slowest < QUICK, f"a read took {slowest:.1f}s while a write was stuck"
    time.sleep(max(0.0, 12 - (time.monotonic() - outage_started)))  # beyond the S3 client's retries
    assert client.get(EXPERIMENT).state == pb.EXPERIMENT_STATE_RUNNING  # nothing stored says otherwise

    servers.append(restart_seaweedfs(servers[-1], outage_setup["weed_dir"]))
    # Once S3 answers, the stop is recorded, and then shown: FAILED on a fault, resumable.
    wait_until(
        lambda: client.get(EXPERIMENT).state == pb.EXPERIMENT_STATE_FAILED, "the fault is recorded", 120
    )
    failed = client.get(EXPERIMENT)
    assert failed.failure_kind == pb.FAILURE_KIND_FAULT
    assert "stopped on a fault" in failed.status_message and "ResumeExperiment" in failed.status_message
    stored = store.get_json(layout.experiment_key(EXPERIMENT))["experiment"]
    assert (stored["state"], stored["failure_kind"]) == ("EXPERIMENT_STATE_FAILED", "FAILURE_KIND_FAULT")

    resumed = client.resume(EXPERIMENT)
    assert (resumed.state, resumed.failure_kind, resumed.status_message) == (
        pb.EXPERIMENT_STATE_RUNNING, pb.FAILURE_KIND_UNSPECIFIED, "",
    )  # fmt: skip
    final = client.wait(EXPERIMENT, timeout=600)
    assert final.state == pb.EXPERIMENT_STATE_SUCCEEDED, final.status_message
    rounds = client.list_rounds(EXPERIMENT)
    assert [r.labeled_count for r in rounds] == [INITIAL, INITIAL + BATCH]

    # Every label stored exactly once, one snapshot and one training run per round.
    annotations = client.list_annotations("digits", EXPERIMENT)
    assert max(Counter((a.example_id, a.annotator) for a in annotations).values()) == 1
    assert sorted(a.example_id for a in annotations) == sorted(initial + batch)
    assert final.labels_used == INITIAL + BATCH
    snapshots = client.store.ListSnapshots(ds.ListSnapshotsRequest(parent="datasets/digits"), timeout=30)
    assert len([s for s in snapshots.snapshots if s.annotation_set == EXPERIMENT]) == 2
    trainer = trainer_pb2_grpc.TrainerServiceStub(channel(local.address("trainer")))
    runs = trainer.ListOperations(
        trainer_pb2.ListOperationsRequest(filter=f"experiment={EXPERIMENT}", page_size=100), timeout=30
    ).operations
    assert sorted(o.labels["round"] for o in runs) == ["0", "1"]
