"""python -m bench.reliability --output docs: runs every part (see __init__.py) and writes
docs/reliability.md and docs/reliability.json. Each part's figures are kept in
{workdir}/parts/{part}.json, so `--parts` can rerun one part and still write the whole report."""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from pathlib import Path
from typing import Any

from bench.reliability import bad_inputs, chaos, load, report

PARTS = ("chaos", "load", "appends", "bad_inputs")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m bench.reliability", description=__doc__)
    p.add_argument("--output", type=Path, default=Path("docs"))
    p.add_argument("--workdir", type=Path, default=Path("bench-output/reliability"))
    p.add_argument("--parts", nargs="+", choices=PARTS, default=list(PARTS))
    p.add_argument("--experiments", type=int, default=12, help="experiments under random kills")
    p.add_argument("--concurrent", type=int, default=4, help="of those, how many run at a time")
    p.add_argument("--max-rounds", type=int, default=3)
    p.add_argument("--kill-every", type=float, default=15.0, help="seconds between kills, on average")
    p.add_argument("--load-experiments", type=int, default=10)
    p.add_argument("--clients", type=int, default=50, help="concurrent annotator clients")
    p.add_argument("--load-seconds", type=float, default=180.0, help="least seconds of annotator load")
    p.add_argument("--append-seconds", type=float, default=30.0, help="seconds of bench/append_load.py")
    p.add_argument("--seed", type=int, default=12)
    p.add_argument("--timeout", type=float, default=3600.0, help="seconds the random kills may take")
    return p


def run_part(part: str, args: argparse.Namespace, scratch: Path) -> dict[str, Any]:
    if part == "chaos":
        return chaos.run_chaos(
            scratch,
            args.experiments,
            args.concurrent,
            args.max_rounds,
            args.kill_every,
            args.seed,
            args.timeout,
        ).as_dict()
    if part == "load":
        return load.experiments_under_load(
            scratch, args.load_experiments, args.clients, args.load_seconds, args.max_rounds
        )
    if part == "appends":
        return load.append_figures(scratch, args.clients, args.append_seconds)
    return bad_inputs.try_bad_inputs(scratch).as_dict()


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    args.workdir = args.workdir.absolute()  # SeaweedFS runs in a folder of its own: relative paths break
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    saved = args.workdir / "parts"
    saved.mkdir(parents=True, exist_ok=True)
    for part in args.parts:
        with tempfile.TemporaryDirectory(prefix=f"reliability-{part}-", dir=args.workdir) as scratch:
            logging.info("part %s", part)
            figures = run_part(part, args, Path(scratch))
        (saved / f"{part}.json").write_text(json.dumps(figures, indent=1))
        logging.info("part %s: %s", part, json.dumps(figures))
    missing = [part for part in PARTS if not (saved / f"{part}.json").exists()]
    if missing:
        logging.info("no report yet: parts %s have not run (--parts)", missing)
        return 0
    parts = {part: json.loads((saved / f"{part}.json").read_text()) for part in PARTS}
    sizes = {
        "experiments": args.experiments,
        "concurrent": args.concurrent,
        "max_rounds": args.max_rounds,
        "kill_every_s": args.kill_every,
        "load_experiments": args.load_experiments,
        "clients": args.clients,
        "load_seconds": args.load_seconds,
        "append_seconds": args.append_seconds,
    }
    head = report.write(args.output, parts, sizes)
    print(json.dumps(head, indent=2))
    exact = head["labels_lost"] == 0 == head["labels_duplicated"] == head["experiments_failed_for_good"]
    return 0 if exact else 1


if __name__ == "__main__":
    raise SystemExit(main())
