"""Load on the annotation log: concurrent clients append labels to one dataset of a real store.

    python -m bench.append_load --clients 50 --duration 30 [--restarts 1] [--backend s3]

Starts SeaweedFS (the S3 backend; `--backend local` for a folder) and the store service as its own
process, ingests a small tabular dataset, then runs `--clients` threads for `--duration` seconds. Each
client sends AppendAnnotations back to back (`--think-ms` between requests), every request with its
own request id and `--annotations` labels under the client's annotator name; every `--resend-every`th
request is sent a second time, which must answer duplicate. `--restarts N` SIGTERMs and restarts the
store N times, evenly spread over the run; a client whose call fails resends the same request (same
request id) until it is answered. At the end the log is read back through ListAnnotations and
compared with what was acknowledged, label by label.

Prints one JSON object: latencies of the answered first attempts (p50_ms, p99_ms, max_ms),
throughput (requests_per_s, annotations_per_s), and exactness (labels_lost, labels_duplicated,
resends_not_duplicate: each must be 0). Exit status 1 when any of them is not 0.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pandas as pd
from labelloop.cli.local import LocalCluster, Ports
from labelloop.core.config import StorageConfig
from labelloop.core.server import channel
from labelloop.v1 import dataset_store_pb2 as pb
from labelloop.v1 import dataset_store_pb2_grpc as pb_grpc

DATASET = "load"
CLASSES = ("a", "b", "c")
RETRY_SECONDS = 120.0
# A store going away answers these; whether the request was stored is then unknown: resend it.
RETRIED = (
    grpc.StatusCode.UNAVAILABLE,
    grpc.StatusCode.DEADLINE_EXCEEDED,
    grpc.StatusCode.CANCELLED,
)  # how long a client resends one request before the run counts it lost


@dataclass
class ClientResult:
    latencies: list[float] = field(default_factory=list)  # seconds, answered first attempts
    sent: Counter[tuple[str, str, str]] = field(default_factory=Counter)  # acknowledged labels
    requests: int = 0
    resends: int = 0
    resends_not_duplicate: int = 0
    failed_attempts: int = 0
    unanswered: int = 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux /proc), 0 where unknown."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def write_manifest(folder: Path, rows: int) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    frame = pd.DataFrame(
        {
            "id": [f"e{i:05d}" for i in range(rows)],
            "x": np.arange(rows, dtype=float),
            "label": [CLASSES[i % len(CLASSES)] for i in range(rows)],
        }
    )
    path = folder / "manifest.csv"
    frame.to_csv(path, index=False)
    return path


@contextmanager
def object_store(backend: str, workdir: Path) -> Iterator[StorageConfig]:
    if backend == "local":
        yield StorageConfig(backend="local", root=workdir / "store")
        return
    # Beside the package, like the tests: the same SeaweedFS the test suite starts.
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from tests.support.seaweedfs import start_seaweedfs

    server = start_seaweedfs(workdir / "seaweedfs")
    try:
        yield StorageConfig(
            backend="s3",
            endpoint=server.endpoint,
            bucket="load",
            access_key=server.access_key,
            secret_key=server.secret_key,
        )
    finally:
        server.stop()


def _call(stub: pb_grpc.DatasetStoreServiceStub, request: pb.AppendAnnotationsRequest) -> Any:
    return stub.AppendAnnotations(request, timeout=30)


def _append_until_answered(
    stub: pb_grpc.DatasetStoreServiceStub, request: pb.AppendAnnotationsRequest, result: ClientResult
) -> tuple[bool, bool]:
    """Sends the request until the store answers (a restart makes calls fail for a while):
    (answered at all, answered at the first attempt)."""
    deadline = time.monotonic() + RETRY_SECONDS
    first = True
    while True:
        try:
            _call(stub, request)
            return True, first
        except grpc.RpcError as error:
            if error.code() not in RETRIED:
                raise
        result.failed_attempts += 1
        first = False
        if time.monotonic() > deadline:
            result.unanswered += 1
            return False, False
        time.sleep(0.2)


def run_client(
    number: int, address: str, pool: list[str], args: argparse.Namespace, stop: threading.Event
) -> ClientResult:
    result = ClientResult()
    rng = random.Random(number)
    stub = pb_grpc.DatasetStoreServiceStub(channel(address))
    annotator = f"client-{number:03d}"
    sequence = 0
    while not stop.is_set():
        sequence += 1
        examples = rng.sample(pool, args.annotations)
        labels = [(e, annotator, rng.choice(CLASSES)) for e in examples]
        request = pb.AppendAnnotationsRequest(
            parent=f"datasets/{DATASET}",
            request_id=f"c{number:03d}-{sequence:06d}",
            annotations=[pb.Annotation(example_id=e, annotator=a, label=lab) for e, a, lab in labels],
        )
        started = time.perf_counter()
        answered, first = _append_until_answered(stub, request, result)
        if not answered:
            continue  # never acknowledged: not counted as sent
        if first:
            result.latencies.append(time.perf_counter() - started)
        result.requests += 1
        result.sent.update(labels)
        if args.resend_every and sequence % args.resend_every == 0:
            result.resends += 1
            try:
                reply = _call(stub, request)
                result.resends_not_duplicate += int(not reply.duplicate)
            except grpc.RpcError:
                result.failed_attempts += 1  # a restart: the resend is only a check, not needed
        if args.think_ms:
            time.sleep(args.think_ms / 1000)
    return result


def read_back(stub: pb_grpc.DatasetStoreServiceStub) -> Counter[tuple[str, str, str]]:
    found: Counter[tuple[str, str, str]] = Counter()
    token = ""
    while True:
        reply = stub.ListAnnotations(
            pb.ListAnnotationsRequest(parent=f"datasets/{DATASET}", page_size=1000, page_token=token),
            timeout=300,
        )
        found.update((a.example_id, a.annotator, a.label) for a in reply.annotations)
        token = reply.next_page_token
        if not token:
            return found


def measure(args: argparse.Namespace, workdir: Path, s3: StorageConfig | None = None) -> dict[str, Any]:
    """The figures of one run (module docstring); `s3`: a running S3 server's bucket to use instead
    of starting SeaweedFS (the tests' own)."""
    manifest = write_manifest(workdir / "data", args.examples)
    with nullcontext(s3) if s3 else object_store(args.backend, workdir) as storage:
        cluster = LocalCluster(
            storage=storage,
            log_dir=workdir / "logs",
            ports={"store": Ports(_free_port(), _free_port())},
            services=("store",),
            extra_env={"LABELLOOP_LOG_LEVEL": "WARNING"},
            import_roots=[manifest.parent],
        )
        with cluster:
            address = cluster.address("store")
            stub = pb_grpc.DatasetStoreServiceStub(channel(address))
            stub.CreateDataset(
                pb.CreateDatasetRequest(
                    dataset_id=DATASET, manifest_uri=str(manifest), label_column="label", id_column="id"
                ),
                timeout=120,
            )
            pool = [f"e{i:05d}" for i in range(args.examples)]
            stop = threading.Event()
            results: list[ClientResult] = []
            errors: list[BaseException] = []

            def client(number: int) -> None:
                try:
                    results.append(run_client(number, address, pool, args, stop))
                except BaseException as error:  # reported below, with the other figures
                    errors.append(error)

            threads = [threading.Thread(target=client, args=(n,), daemon=True) for n in range(args.clients)]
            cpu_before = cpu_seconds(cluster.processes["store"].pid)
            started = time.perf_counter()
            for thread in threads:
                thread.start()
            for index in range(args.restarts):
                time.sleep(
                    max(
                        0.0, started + args.duration * (index + 1) / (args.restarts + 1) - time.perf_counter()
                    )
                )
                cluster.restart("store")
            time.sleep(max(0.0, started + args.duration - time.perf_counter()))
            stop.set()
            for thread in threads:
                thread.join(RETRY_SECONDS + 60)
            elapsed = time.perf_counter() - started
            # Of the last store process (a restart starts a new one): its CPU per request served.
            store_cpu = cpu_seconds(cluster.processes["store"].pid) - (0.0 if args.restarts else cpu_before)
            if errors:
                raise RuntimeError(f"{len(errors)} clients failed; first: {errors[0]!r}")
            found = read_back(stub)
    sent: Counter[tuple[str, str, str]] = Counter()
    for r in results:
        sent.update(r.sent)
    latencies = np.array([x for r in results for x in r.latencies]) * 1000
    requests = sum(r.requests for r in results)
    return {
        "backend": args.backend,
        "clients": args.clients,
        "duration_s": round(elapsed, 1),
        "annotations_per_request": args.annotations,
        "think_ms": args.think_ms,
        "restarts": args.restarts,
        "requests": requests,
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "max_ms": round(float(latencies.max()), 1) if len(latencies) else None,
        "requests_per_s": round(requests / elapsed, 1),
        "annotations_per_s": round(requests * args.annotations / elapsed, 1),
        "store_cpu_ms_per_request": round(1000 * store_cpu / requests, 2)
        if requests and not args.restarts
        else None,
        "failed_attempts": sum(r.failed_attempts for r in results),
        "resends": sum(r.resends for r in results),
        "resends_not_duplicate": sum(r.resends_not_duplicate for r in results),
        "unanswered_requests": sum(r.unanswered for r in results),
        "labels_acknowledged": sum(sent.values()),
        "labels_lost": sum((sent - found).values()),
        "labels_duplicated": sum((found - sent).values()),
    }


def exact(figures: dict[str, Any]) -> bool:
    keys = ("labels_lost", "labels_duplicated", "resends_not_duplicate", "unanswered_requests")
    return all(figures[k] == 0 for k in keys)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.append_load", description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=50)
    p.add_argument("--duration", type=float, default=30.0, help="seconds of load")
    p.add_argument("--annotations", type=int, default=5, help="labels per request")
    p.add_argument("--think-ms", type=float, default=0.0, help="pause between a client's requests")
    p.add_argument("--resend-every", type=int, default=10, help="resend every n-th request (0: never)")
    p.add_argument("--restarts", type=int, default=0, help="store restarts spread over the run")
    p.add_argument("--examples", type=int, default=2000, help="pool examples of the dataset")
    p.add_argument("--backend", choices=("s3", "local"), default="s3")
    p.add_argument("--workdir", type=Path, help="scratch folder (default: a temporary one)")
    p.add_argument("--output", type=Path, help="also write the JSON here")
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.workdir:
        figures = measure(args, args.workdir.absolute())
    else:
        with tempfile.TemporaryDirectory(prefix="labelloop-append-load-") as scratch:
            figures = measure(args, Path(scratch))
    text = json.dumps(figures, indent=1)
    print(text)
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text + "\n")
    return 0 if exact(figures) else 1


if __name__ == "__main__":
    sys.exit(main())
