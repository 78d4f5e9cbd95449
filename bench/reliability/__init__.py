"""`make reliability`: the long versions of the fault matrix (tests/reliability), written to
docs/reliability.md and docs/reliability.json.

    python -m bench.reliability --output docs [--experiments 12 --kill-every 8 --load-seconds 120 ...]

Parts: chaos.py (random SIGKILLs of services and the trainer's worker over many experiments, each
resumed when it stops on a fault), load.py (experiments while 50 annotator clients append labels, and
bench/append_load.py's appends on a quiet store), bad_inputs.py (malformed names, manifests,
annotations, arrays and configs, counted refused or silently accepted), report.py (the figures).
"""
