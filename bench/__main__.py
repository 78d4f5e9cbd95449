"""`python -m bench --mode quick|full --output docs`: runs the benchmarks, writes the report.

Scratch data (data sets, stores, service logs, cached runs) goes under --workdir (default
bench-output/{mode}, git-ignored); docs/benchmarks.md and docs/benchmarks/ (results.json, plots)
under --output. Finished runs are cached in the workdir, so an interrupted run resumes.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import warnings
from dataclasses import replace
from pathlib import Path

from bench.config import BenchConfig, CurveConfig, config_for
from bench.harness import PARTS, Workspace, run_curves


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--mode", choices=("quick", "full", "tiny"), default="quick")
    parser.add_argument("--output", default="docs", help="folder of benchmarks.md and benchmarks/")
    parser.add_argument("--workdir", default="", help="scratch folder (default bench-output/{mode})")
    parser.add_argument("--parts", default=",".join(PARTS), help=f"comma-separated subset of {PARTS}")
    parser.add_argument(
        "--curve-path",
        choices=("inprocess", "services"),
        default="",
        help="label-efficiency runs through the in-process loop or the five services (default: the mode's)",
    )
    parser.add_argument(
        "--seeds", default="", help="comma-separated label-efficiency seeds (default: the mode's)"
    )
    parser.add_argument(
        "--curve-datasets",
        default="",
        help="comma-separated label-efficiency scenarios (default: the mode's), "
        "e.g. fashion_mnist_noisy,digits_images",
    )
    parser.add_argument("--rounds", type=int, default=0, help="at most this many labeling rounds")
    parser.add_argument(
        "--strategies", default="", help="comma-separated strategies to run (default: each scenario's)"
    )
    parser.add_argument(
        "--fresh",
        action="store_true",
        help="start runs that are not cached afresh, never taking over an interrupted run's experiment "
        "left in the services' store (use after changing the services' code)",
    )
    parser.add_argument(
        "--cached-only",
        action="store_true",
        help="run nothing new: summarise the finished runs in the cache (each strategy with the seeds "
        "it has), e.g. after runs with different --seeds per --strategies",
    )
    parser.add_argument(
        "--parallel", type=int, default=0, help="experiments at a time on the services (default: the mode's)"
    )
    parser.add_argument(
        "--rerun-overhead",
        action="store_true",
        help="measure the overhead part again though a cached run has its config (after changing the "
        "services' code; `make bench-overhead`)",
    )
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from part files")
    parser.add_argument(
        "--reuse-parts",
        default="",
        help="comma-separated parts (overhead, scale) to take from the results.json already in --output "
        "instead of running them; the report says where they came from",
    )
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "autogluon", "pytorch_lightning"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    config = config_for(args.mode)
    if args.curve_path:
        config = replace(config, curve_path=args.curve_path)
    config = _narrowed(config, args.seeds, args.curve_datasets, args.rounds, args.strategies)
    if args.cached_only:
        config = replace(config, cached_only=True)
    if args.fresh:
        config = replace(config, resume_experiments=False)
    if args.rerun_overhead:
        config = replace(config, rerun_overhead=True)
    if args.parallel:
        config = replace(config, parallel=args.parallel)
    ws = Workspace(Path(args.workdir or f"bench-output/{args.mode}"))
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}: choose from {PARTS}")

    for part in [p.strip() for p in args.reuse_parts.split(",") if p.strip()]:
        _reuse_part(ws, Path(args.output) / "benchmarks" / "results.json", part)
    started = time.monotonic()
    if not args.report_only:
        for part in parts:
            part_started = time.monotonic()
            if part == "curves":
                run_curves(config, ws)
            elif part == "overhead":
                from bench.overhead import run_overhead

                run_overhead(config, ws)
            elif part == "scale":
                from bench.scale import run_scale

                run_scale(config, ws)
            logging.info("part %s took %.0f s", part, time.monotonic() - part_started)

    from bench.report import write_report

    command = "python -m bench " + " ".join(argv if argv is not None else sys.argv[1:])
    written = write_report(config, ws, Path(args.output), time.monotonic() - started, command)
    for path in written:
        print(path)
    return 0


RESULT_KEYS = {"overhead": "service_overhead", "scale": "scoring_at_scale"}


def _reuse_part(ws: Workspace, results_path: Path, part: str) -> None:
    """Copies a part's results from an earlier results.json into the workspace (unless it has its own)."""
    import json

    if part not in RESULT_KEYS:
        raise SystemExit(f"--reuse-parts takes {sorted(RESULT_KEYS)}, not {part!r}")
    if ws.part_path(part).exists():
        return
    earlier = json.loads(results_path.read_text())
    result = earlier[RESULT_KEYS[part]]
    result["reused_from"] = {"generated_at": earlier["generated_at"], "command": earlier["command"]}
    ws.save_part(part, result)


def _narrowed(
    config: BenchConfig, seeds: str, datasets: str, rounds: int = 0, strategies: str = ""
) -> BenchConfig:
    """The mode's config with fewer seeds, scenarios or rounds (results.json records what actually ran)."""
    curves = config.curves
    if datasets:
        wanted = {d.strip() for d in datasets.split(",") if d.strip()}
        curves = tuple(c for c in curves if c.name in wanted)
    if seeds:
        chosen = tuple(int(s) for s in seeds.split(",") if s.strip())
        curves = tuple(replace(c, seeds=chosen) for c in curves)
    if rounds:
        curves = tuple(_fewer_rounds(c, rounds) for c in curves)
    if strategies:
        # The scenario's own strategies, and variants it knows but does not run by default
        # (e.g. activelab_in_sample, bench/config.py), in the order given.
        chosen_strategies = [s.strip() for s in strategies.split(",") if s.strip()]
        curves = tuple(
            replace(c, strategies=tuple(s for s in chosen_strategies if _known(c, s))) for c in curves
        )
    return replace(config, curves=curves)


def _known(cfg: CurveConfig, strategy: str) -> bool:
    try:
        cfg.variant(strategy)
    except ValueError:
        return False
    return True


def _fewer_rounds(cfg: CurveConfig, rounds: int) -> CurveConfig:
    if rounds >= cfg.rounds:
        return cfg
    budget = cfg.label_budget - (cfg.rounds - rounds) * cfg.batch_size if cfg.label_budget else 0
    return replace(cfg, rounds=rounds, label_budget=budget)


if __name__ == "__main__":
    sys.exit(main())
