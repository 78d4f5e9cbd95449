"""Load: `experiments` experiments run while `clients` annotator clients append labels (a request a
second each) to another dataset of the same store (bench/append_load.py's clients), for `seconds`; and
bench/append_load.py's own measurement (the store alone, on SeaweedFS) for the append figures."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from labelloop.core.server import channel
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import dataset_store_pb2_grpc as ds_grpc
from labelloop.v1 import experiments_pb2 as pb

from bench import append_load
from bench.reliability.cluster import (
    client_for,
    create,
    expected_labels,
    ingest_digits,
    label_counts,
    local_cluster,
)

# Annotators beside running experiments send a request a second each (people, not a load test).
ANNOTATOR_THINK_MS = 1000.0


def load_args(clients: int, seconds: float, workdir: Path, think_ms: float = 0.0) -> argparse.Namespace:
    options = {"--clients": clients, "--duration": seconds, "--workdir": workdir, "--think-ms": think_ms}
    return append_load.parser().parse_args([str(part) for pair in options.items() for part in pair])


def append_figures(workdir: Path, clients: int, seconds: float) -> dict[str, Any]:
    """bench/append_load.py on a store of its own: latencies of appends with nothing else running."""
    workdir.mkdir(parents=True, exist_ok=True)
    return append_load.measure(load_args(clients, seconds, workdir), workdir)


def experiments_under_load(
    workdir: Path, experiments: int, clients: int, seconds: float, max_rounds: int
) -> dict[str, Any]:
    """The experiments and the annotator clients share the services for at least `seconds`, and until
    every experiment ended; then the labels of both are read back."""
    with local_cluster(workdir) as local:
        client = client_for(local)
        ingest_digits(client, workdir / "data")
        address = local.address("store")
        stub = ds_grpc.DatasetStoreServiceStub(channel(address))
        manifest = append_load.write_manifest(workdir / "load-data", 2000)
        stub.CreateDataset(
            ds.CreateDatasetRequest(
                dataset_id=append_load.DATASET,
                manifest_uri=str(manifest),
                label_column="label",
                id_column="id",
            ),
            timeout=120,
        )
        names = [f"load-{n:03d}" for n in range(experiments)]
        for n, name in enumerate(names):
            create(client, name, max_rounds, seed=100 + n)
        args = load_args(clients, seconds, workdir, ANNOTATOR_THINK_MS)
        pool = [f"e{i:05d}" for i in range(2000)]
        stop = threading.Event()
        results: list[append_load.ClientResult] = []
        errors: list[BaseException] = []

        def annotator(number: int) -> None:
            try:
                results.append(append_load.run_client(number, address, pool, args, stop))
            except BaseException as error:  # reported with the figures
                errors.append(error)

        threads = [threading.Thread(target=annotator, args=(n,), daemon=True) for n in range(clients)]
        started = time.monotonic()
        for thread in threads:
            thread.start()
        finals = {}
        for name in names:
            finals[name] = client.wait(name, timeout=3600)
        time.sleep(max(0.0, started + seconds - time.monotonic()))
        stop.set()
        for thread in threads:
            thread.join(append_load.RETRY_SECONDS + 60)
        elapsed = time.monotonic() - started
        if errors:
            raise RuntimeError(f"{len(errors)} annotator clients failed; first: {errors[0]!r}")
        found = append_load.read_back(stub)
        sent: Counter[tuple[str, str, str]] = Counter()
        for result in results:
            sent.update(result.sent)
        latencies = np.array([x for r in results for x in r.latencies]) * 1000
        lost = sum((sent - found).values())
        duplicated = sum((found - sent).values())
        succeeded = 0
        for name, final in finals.items():
            stored, twice = label_counts(client, name)
            succeeded += final.state == pb.EXPERIMENT_STATE_SUCCEEDED
            lost += (
                max(0, expected_labels(max_rounds) - stored)
                if final.state == pb.EXPERIMENT_STATE_SUCCEEDED
                else 0
            )
            duplicated += twice
        client.close()
    requests = sum(r.requests for r in results)
    return {
        "experiments": experiments,
        "experiments_succeeded": succeeded,
        "failed": [
            f"{n}: {f.status_message}" for n, f in finals.items() if f.state != pb.EXPERIMENT_STATE_SUCCEEDED
        ],
        "clients": clients,
        "think_ms": ANNOTATOR_THINK_MS,
        "seconds": round(elapsed, 1),
        "requests": requests,
        "requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(float(np.percentile(latencies, 50)), 1) if len(latencies) else None,
        "p99_ms": round(float(np.percentile(latencies, 99)), 1) if len(latencies) else None,
        "resends_not_duplicate": sum(r.resends_not_duplicate for r in results),
        "labels_lost": lost,
        "labels_duplicated": duplicated,
    }
