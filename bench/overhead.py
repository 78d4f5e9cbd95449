"""Service overhead: one experiment through the five services and as the in-process reference loop.

Same data, split, initial labels, trainer config, strategy and seed on both paths. Per round we
compare wall seconds and stages. Model time (AutoGluon fit + predict) dominates and is noisy on a
shared machine, so next to the raw ratio we report the ratio with the model time taken from the
reference on both sides: (reference round + services' non-model seconds - reference's non-model
seconds) / reference round, which isolates what the services add.
"""

from __future__ import annotations

import logging
import os
import statistics
import time
from dataclasses import asdict
from typing import Any

from bench import data
from bench.config import BenchConfig, OverheadConfig
from bench.harness import Workspace, dataset_id, inprocess_fitter, prepare_inprocess
from bench.loop import run_loop
from bench.next_batch import compare_paths

log = logging.getLogger(__name__)

MODEL_STAGES = ("fit", "predict")
GRPC_PINGS = 200


def run_overhead(config: BenchConfig, ws: Workspace) -> dict[str, Any]:
    results: dict[str, Any] = {"datasets": {}}
    for cfg in config.overhead:
        key = asdict(cfg)
        name = f"overhead-{cfg.dataset}-s{cfg.seed}"
        cached = None if config.rerun_overhead else ws.cache.get(name, key)
        if cached is None:
            reference = _reference(cfg, ws)
            services = _services(cfg, ws)
            cached = {"reference": reference, "services": services}
            ws.cache.put(name, key, cached)
        results["datasets"][cfg.dataset] = {"config": key, **cached, **compare(cached)}
        ws.save_part("overhead", results)
    ws.save_part("overhead", results)
    return results


def _reference(cfg: OverheadConfig, ws: Workspace) -> dict[str, Any]:
    frames = prepare_inprocess(ws, cfg.dataset, cfg.rows, cfg.test_fraction)
    fitter = inprocess_fitter(ws, cfg.hyperparameters, cfg.checkpoints, frames.image_column)
    started = time.perf_counter()
    import autogluon.multimodal  # noqa: F401 - the import (~10 s) is paid before the loop, as the worker does

    import_seconds = time.perf_counter() - started
    load = [round(x, 2) for x in os.getloadavg()]
    started = time.perf_counter()
    rounds = run_loop(
        frames, fitter, strategy=cfg.strategy, seed=cfg.seed, per_class=cfg.per_class,
        batch_size=cfg.batch_size, rounds=cfg.rounds,
    )  # fmt: skip
    return {
        "import_seconds": round(import_seconds, 2),
        "load_average": load,
        "wall_seconds": round(time.perf_counter() - started, 2),
        "rounds": [_round(asdict(r)) for r in rounds],
    }


def _services(cfg: OverheadConfig, ws: Workspace) -> dict[str, Any]:
    from bench.services_path import ensure_dataset, run_experiment, running_cluster

    ingest = data.ingest_args(cfg.dataset, ws.data_folder(cfg.dataset, cfg.rows), cfg.rows, cfg.test_fraction)
    did = dataset_id(cfg.dataset, cfg.rows)
    started = time.perf_counter()
    with running_cluster(
        ws.root / "services-overhead" / f"{cfg.dataset}-{int(time.time())}", ws.root / "data"
    ) as (
        cluster,
        client,
    ):
        startup = time.perf_counter() - started
        started = time.perf_counter()
        ensure_dataset(client, did, ingest)
        ingest_seconds = time.perf_counter() - started
        ping = _grpc_latency(cluster.address("store"))
        load = [round(x, 2) for x in os.getloadavg()]
        started = time.perf_counter()
        rounds = run_experiment(
            client, f"overhead-{cfg.seed}", dataset_id=did, strategy=cfg.strategy, seed=cfg.seed,
            per_class=cfg.per_class, batch_size=cfg.batch_size, rounds=cfg.rounds,
            hyperparameters=cfg.hyperparameters, checkpoints=cfg.checkpoints,
        )  # fmt: skip
        wall = time.perf_counter() - started
    return {
        "startup_seconds": round(startup, 2),
        "ingest_seconds": round(ingest_seconds, 2),
        "grpc_roundtrip_ms": ping,
        "load_average": load,
        "wall_seconds": round(wall, 2),
        "rounds": [_round(r) for r in rounds],
    }


def _grpc_latency(address: str) -> dict[str, float]:
    """Round trip of the smallest RPC (health check) on a warm channel: the floor of a gRPC hop."""
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from labelloop.core.server import channel

    stub = health_pb2_grpc.HealthStub(channel(address))
    times = []
    for _ in range(GRPC_PINGS):
        t = time.perf_counter()
        stub.Check(health_pb2.HealthCheckRequest(service=""), timeout=5)
        times.append((time.perf_counter() - t) * 1000)
    return {
        "median": round(statistics.median(times), 3),
        "p90": round(sorted(times)[int(0.9 * len(times))], 3),
    }


def _round(r: dict[str, Any]) -> dict[str, Any]:
    return {
        "number": r["number"],
        "labeled": r["labeled"],
        "test_accuracy": round(r["test_accuracy"], 4),
        "seconds": round(r["seconds"], 3),
        "stage_seconds": {k: round(v, 3) for k, v in r["stage_seconds"].items()},
    }


def _model_seconds(r: dict[str, Any]) -> float:
    return sum(r["stage_seconds"].get(s, 0.0) for s in MODEL_STAGES)


def compare(result: dict[str, Any]) -> dict[str, Any]:
    """Per-round and total ratios (raw and with model time equalised), and where the extra time goes."""
    ref, svc = result["reference"]["rounds"], result["services"]["rounds"]
    per_round = []
    for a, b in zip(ref, svc, strict=False):
        added = (b["seconds"] - _model_seconds(b)) - (a["seconds"] - _model_seconds(a))
        per_round.append(
            {
                "round": a["number"],
                "reference_seconds": a["seconds"],
                "services_seconds": b["seconds"],
                "ratio": round(b["seconds"] / a["seconds"], 3),
                "added_non_model_seconds": round(added, 3),
                "ratio_model_time_equalised": round((a["seconds"] + added) / a["seconds"], 3),
                # The same added seconds relative to the services' own round without them: the reference's
                # fits ran slower than the worker's here, which would flatter the ratio above.
                "ratio_vs_services_model_time": round(b["seconds"] / max(b["seconds"] - added, 1e-9), 3),
                "same_accuracy": abs(a["test_accuracy"] - b["test_accuracy"]) < 1e-9,
            }
        )
    ref_total = sum(r["seconds"] for r in ref[: len(per_round)])
    svc_total = sum(r["seconds"] for r in svc[: len(per_round)])
    added_total = sum(p["added_non_model_seconds"] for p in per_round)
    # Round 0 also carries one-time costs (the trainer's first job, caches): steady state leaves it out.
    steady = per_round[1:] or per_round
    steady_ref = sum(p["reference_seconds"] for p in steady)
    steady_svc = sum(p["services_seconds"] for p in steady)
    steady_added = sum(p["added_non_model_seconds"] for p in steady)
    return {
        "per_round": per_round,
        "added_seconds_per_round_steady_state": round(steady_added / len(steady), 3),
        "ratio_steady_state_vs_services_model_time": round(steady_svc / (steady_svc - steady_added), 3),
        "ratio_steady_state": round(steady_svc / steady_ref, 3),
        "ratio_steady_state_model_time_equalised": round((steady_ref + steady_added) / steady_ref, 3),
        "ratio_total": round(svc_total / ref_total, 3),
        "ratio_total_model_time_equalised": round((ref_total + added_total) / ref_total, 3),
        "ratio_median_round": round(statistics.median(p["ratio"] for p in per_round), 3),
        "attribution": attribution(ref[: len(per_round)], svc[: len(per_round)]),
        "time_to_next_batch": compare_paths(result),
    }


def attribution(ref: list[dict[str, Any]], svc: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Mean seconds per round of each stage on both paths. The services' `train` minus fit and
    predict is the job's own overhead: dispatch to the worker, reading examples, writing arrays and
    the model to the store, and the events that carry the run's end to the controller."""

    def mean(rounds: list[dict[str, Any]], stage: str) -> float:
        return round(statistics.fmean(r["stage_seconds"].get(stage, 0.0) for r in rounds), 3)

    stages = ["snapshot", "fit", "predict", "evaluate", "score", "select", "label"]
    out = {
        s: {"reference": mean(ref, s) if s != "snapshot" else 0.0, "services": mean(svc, s)} for s in stages
    }
    job = statistics.fmean(r["stage_seconds"].get("train", 0.0) - _model_seconds(r) for r in svc)
    out["trainer_job_overhead"] = {"reference": 0.0, "services": round(job, 3)}
    out["round_total"] = {
        "reference": round(statistics.fmean(r["seconds"] for r in ref), 3),
        "services": round(statistics.fmean(r["seconds"] for r in svc), 3),
    }
    return out
