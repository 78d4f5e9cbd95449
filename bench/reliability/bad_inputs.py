"""Bad inputs tried against running services: malformed names, manifests, annotations, arrays and
experiment configs. Each must be refused with a clear status (anything but OK); INTERNAL or UNKNOWN
counts as refused but unclear. A service that dies on one is counted too."""

from __future__ import annotations

import itertools
import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import grpc
import numpy as np
from labelloop.cli.local import LocalCluster
from labelloop.client import LabelLoopClient
from labelloop.core.server import channel
from labelloop.core.storage import LocalStore
from labelloop.v1 import common_pb2, selector_pb2, selector_pb2_grpc
from labelloop.v1 import dataset_store_pb2 as ds
from labelloop.v1 import experiments_pb2 as pb

from bench.reliability.cluster import DATASET, client_for, create, ingest_digits, local_cluster

log = logging.getLogger(__name__)
UNCLEAR = (grpc.StatusCode.INTERNAL, grpc.StatusCode.UNKNOWN)
Case = tuple[str, str, Callable[[], Any]]  # (category, what, the call)


@dataclass
class Tally:
    tried: Counter[str] = field(default_factory=Counter)
    accepted: list[str] = field(default_factory=list)  # answered OK: silently accepted
    unclear: list[str] = field(default_factory=list)  # refused with INTERNAL/UNKNOWN
    crashed: list[str] = field(default_factory=list)  # services that died meanwhile

    def as_dict(self) -> dict[str, Any]:
        return {
            "tried": sum(self.tried.values()),
            "tried_by_category": dict(self.tried),
            "silently_accepted": self.accepted,
            "refused_unclearly": self.unclear,
            "services_crashed": self.crashed,
        }


def _write_manifests(folder: Path, good: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    header = good.read_text().splitlines()[0]
    row = good.read_text().splitlines()[1]
    files = {
        "an empty file": "",
        "a header only": header + "\n",
        "binary garbage named .csv": "\x00\x01\xff" * 100,
        "duplicate example ids": f"{header}\n{row}\n{row}\n",
        "empty example ids": f"{header}\n" + ",".join(["", *row.split(",")[1:]]) + "\n",
        "rows of the wrong width": f"{header}\n1,2,3\n",
    }
    paths = {}
    for n, (what, text) in enumerate(files.items()):
        paths[what] = folder / f"bad-{n}.csv"
        paths[what].write_bytes(text.encode("latin-1"))
    paths["CSV text named .parquet"] = folder / "bad.parquet"
    paths["CSV text named .parquet"].write_text(good.read_text())
    return paths


def cases(client: LabelLoopClient, local: LocalCluster, workdir: Path, good: Path) -> list[Case]:
    store = client.store

    def dataset(dataset_id: str, manifest: str, **fields: Any) -> Callable[[], Any]:
        request = ds.CreateDatasetRequest(
            dataset_id=dataset_id, manifest_uri=manifest, label_column="label", id_column="id", **fields
        )
        return lambda: store.CreateDataset(request, timeout=60)

    ids = itertools.count()  # every case its own resource id: one accepted must not mask the next ones
    found: list[Case] = []
    for name in ("", "Digits", "a" * 200, "../etc", "a/b", "a b", "ü", "x\x00y", "-lead", "a" * 100_000):
        found.append(("names", f"dataset id {name[:20]!r}", dataset(name, str(good))))
    for what, path in _write_manifests(workdir / "bad-manifests", good).items():
        found.append(("manifests", what, dataset(f"bad-manifest-{next(ids)}", str(path))))
    for what, uri in {
        "a missing file": str(workdir / "missing.csv"),
        "a file outside the import roots": "/etc/passwd",
        "a folder": str(workdir),
        "an http URL": "http://127.0.0.1:1/x.csv",
        "another bucket": "s3://elsewhere/x.csv",
    }.items():
        found.append(("manifests", what, dataset(f"bad-manifest-{next(ids)}", uri)))
    found.append(
        ("manifests", "a split column that is not there", dataset("bad-col", str(good), split_column="nope"))
    )

    pool = [
        e.example_id
        for e in store.ListExamples(
            ds.ListExamplesRequest(parent=f"datasets/{DATASET}", split=ds.SPLIT_POOL, page_size=5), timeout=30
        ).examples
    ]
    test = [
        e.example_id
        for e in store.ListExamples(
            ds.ListExamplesRequest(parent=f"datasets/{DATASET}", split=ds.SPLIT_TEST, page_size=1), timeout=30
        ).examples
    ]

    def append(
        annotations: list[tuple[str, str, str]],
        request_id: str,
        parent: str = f"datasets/{DATASET}",
        annotation_set: str = "bad",
    ) -> Callable[[], Any]:
        request = ds.AppendAnnotationsRequest(
            parent=parent, annotation_set=annotation_set, request_id=request_id,
            annotations=[ds.Annotation(example_id=e, annotator=a, label=lab) for e, a, lab in annotations],
        )  # fmt: skip
        return lambda: store.AppendAnnotations(request, timeout=60)

    store.AppendAnnotations(
        ds.AppendAnnotationsRequest(
            parent=f"datasets/{DATASET}",
            annotation_set="bad",
            request_id="first",
            annotations=[ds.Annotation(example_id=pool[0], annotator="ann", label="1")],
        ),
        timeout=60,
    )
    for what, call in {
        "an unknown example": append([("nope", "ann", "1")], "r1"),
        "a test-split example": append([(test[0], "ann", "1")], "r2"),
        "an empty label": append([(pool[1], "ann", "")], "r3"),
        "a label outside the classes": append([(pool[1], "ann", "cat")], "r4"),
        "an empty annotator": append([(pool[1], "", "1")], "r5"),
        "a 10k-character annotator": append([(pool[1], "a" * 10_000, "1")], "r6"),
        "a 1M-character label": append([(pool[1], "ann", "1" * 1_000_000)], "r7"),
        "the same pair twice in a request": append([(pool[2], "ann", "1"), (pool[2], "ann", "2")], "r8"),
        "no annotations": append([], "r9"),
        "a reused request id, other labels": append([(pool[3], "ann", "2")], "first"),
        "an unknown dataset": append([(pool[1], "ann", "1")], "r10", parent="datasets/nope"),
        "a malformed parent": append([(pool[1], "ann", "1")], "r11", parent="nope"),
        "a malformed annotation set": append([(pool[1], "ann", "1")], "r12", annotation_set="../x"),
        "20k annotators in one request": append([(pool[4], f"a{i}", "1") for i in range(20_000)], "r13"),
    }.items():
        found.append(("annotations", what, call))

    files = LocalStore(local.settings.storage.root)
    files.put_bytes("bad/garbage.npy", b"not an array at all")
    files.put_array("bad/scores.npy", np.zeros(5, dtype=np.float32))
    files.put_array("bad/nan.npy", np.full(5, np.nan, dtype=np.float32))
    files.put_array("bad/objects.npy", np.zeros((5, 2), dtype=np.complex64))
    files.put_json("bad/ids.json", [f"x{i}" for i in range(5)])
    files.put_json("bad/short-ids.json", ["x0"])
    selector = selector_pb2_grpc.SelectorServiceStub(channel(local.address("selector")))

    def select(
        key: str,
        shape: list[int],
        dtype: str = "float32",
        ids: str = "bad/ids.json",
        batch: int = 2,
        uri: str = "",
    ) -> Callable[[], Any]:
        ref = common_pb2.ArrayRef(
            uri=uri or files.uri(key), shape=shape, dtype=dtype, example_ids_uri=files.uri(ids)
        )
        request = selector_pb2.SelectBatchRequest(unlabeled_scores=ref, batch_size=batch)
        return lambda: selector.SelectBatch(request, timeout=60)

    for what, call in {
        "not a .npy file": select("bad/garbage.npy", [5]),
        "a shape that is not the stored one": select("bad/scores.npy", [7]),
        "a dtype that is not the stored one": select("bad/scores.npy", [5], dtype="int64"),
        "complex numbers": select("bad/objects.npy", [5, 2], dtype="complex64"),
        "NaN scores": select("bad/nan.npy", [5]),
        "fewer ids than rows": select("bad/scores.npy", [5], ids="bad/short-ids.json"),
        "a missing array": select("bad/missing.npy", [5]),
        "a host file": select("", [5], uri="file:///etc/passwd"),
        "a batch of 0": select("bad/scores.npy", [5], batch=0),
        "a negative batch": select("bad/scores.npy", [5], batch=-3),
    }.items():
        found.append(("arrays", what, call))

    create(client, "probe", max_rounds=1, seed=1)
    base = client.get("probe").config

    def experiment(
        change: Callable[[pb.ExperimentConfig], None], experiment_id: str = ""
    ) -> Callable[[], Any]:
        experiment_id = experiment_id or f"bad-config-{next(ids)}"
        config = pb.ExperimentConfig()
        config.CopyFrom(base)
        change(config)
        request = pb.CreateExperimentRequest(experiment_id=experiment_id, config=config)
        return lambda: client.experiments.CreateExperiment(request, timeout=60)

    def hyper(key: str, value: str) -> Callable[[pb.ExperimentConfig], None]:
        return lambda c: c.trainer.hyperparameters.__setitem__(key, value)

    for what, change in {
        "an unknown strategy number": lambda c: setattr(c, "strategy", 99),
        "a batch size of 0": lambda c: setattr(c, "batch_size", 0),
        "a negative batch size": lambda c: setattr(c, "batch_size", -5),
        "an unknown dataset": lambda c: setattr(c, "dataset", "datasets/nope"),
        "a malformed dataset name": lambda c: setattr(c, "dataset", "../nope"),
        "a learning rate of 'abc'": hyper("optim.lr", "abc"),
        "an unknown hyperparameter": hyper("no.such.thing", "1"),
        "malformed YAML in a hyperparameter": hyper("model.names", "[numerical_mlp"),
        "a noise rate of 1.5": lambda c: setattr(c.simulated_oracle, "noise_rate", 1.5),
        "an annotator accuracy of 1.7": lambda c: c.simulated_oracle.annotator_accuracies.append(1.7),
        "negative max rounds": lambda c: setattr(c.stopping_rule, "max_rounds", -1),
        "a target accuracy of 2": lambda c: setattr(c.stopping_rule, "target_accuracy", 2.0),
    }.items():
        found.append(("configs", what, experiment(change)))
    for name in ("UPPER", "a" * 300, "a/b"):
        found.append(("names", f"experiment id {name[:20]!r}", experiment(lambda c: None, name)))
    return found


def try_bad_inputs(workdir: Path) -> Tally:
    tally = Tally()
    with local_cluster(workdir) as local:
        client = client_for(local)
        good = ingest_digits(client, workdir / "data")
        for category, what, call in cases(client, local, workdir, good):
            tally.tried[category] += 1
            label = f"{category}: {what}"
            try:
                call()
                tally.accepted.append(label)
            except grpc.RpcError as error:
                if error.code() in UNCLEAR:
                    tally.unclear.append(f"{label} -> {error.code().name}: {(error.details() or '')[:200]}")
            tally.crashed.extend(
                f"{s} (after {label})" for s in local.failed() if not any(s in c for c in tally.crashed)
            )
        client.close()
    return tally
