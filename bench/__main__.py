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

from bench.config import BenchConfig, config_for
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
        help="comma-separated label-efficiency data sets (default: the mode's)",
    )
    parser.add_argument("--report-only", action="store_true", help="only rebuild the report from part files")
    args = parser.parse_args(argv)

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    for noisy in ("lightning", "lightning.pytorch", "lightning.fabric", "autogluon", "pytorch_lightning"):
        logging.getLogger(noisy).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")

    config = config_for(args.mode)
    if args.curve_path:
        config = replace(config, curve_path=args.curve_path)
    config = _narrowed(config, args.seeds, args.curve_datasets)
    ws = Workspace(Path(args.workdir or f"bench-output/{args.mode}"))
    parts = [p.strip() for p in args.parts.split(",") if p.strip()]
    unknown = sorted(set(parts) - set(PARTS))
    if unknown:
        parser.error(f"unknown parts {unknown}: choose from {PARTS}")

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


def _narrowed(config: BenchConfig, seeds: str, datasets: str) -> BenchConfig:
    """The mode's config with fewer seeds or data sets (results.json records what actually ran)."""
    curves = config.curves
    if datasets:
        wanted = {d.strip() for d in datasets.split(",") if d.strip()}
        curves = tuple(c for c in curves if c.dataset in wanted)
    if seeds:
        chosen = tuple(int(s) for s in seeds.split(",") if s.strip())
        curves = tuple(replace(c, seeds=chosen) for c in curves)
    return replace(config, curves=curves)


if __name__ == "__main__":
    sys.exit(main())
