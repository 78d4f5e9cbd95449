#!/usr/bin/env bash
# The GPU half on this workplace's lent GPU machine (docs/benchmarks.md, section 4): the device call
# carries .whl and bench-output/gpu/data (bench/gpu_wheels.sh makes both here) and runs
# `bash bench/gpu_device.sh`. It installs the carried wheels into /tmp/site, runs
# `python -m bench.gpu --devices cuda` (extra arguments are passed on, e.g. --quick), and leaves
# gpu.json (the CPU half that travelled with the tree, plus the GPU half) and the log in $OUT; here,
# `.venv/bin/python -m bench.gpu --merge-from <that gpu.json> --output docs` takes the GPU half in.
# PYTHON, DEVICES, WHEELS, SITE and OUTPUT override python3, cuda, .whl, /tmp/site and docs (a dry run of
# this script on a machine without a GPU).
set -uo pipefail
: "${OUT:?OUT: the folder whose files come back from the device machine}"
PYTHON=${PYTHON:-python3}
SITE=${SITE:-/tmp/site}
OUTPUT=${OUTPUT:-docs}
wheels=("${WHEELS:-.whl}"/*.whl)
# AutoGluon 1.6.3 asks for pandas<2.4: the carried 2.3.3 only where the machine's own pandas is not 2.x.
if "$PYTHON" -c 'import sys, pandas; sys.exit(not pandas.__version__.startswith("2."))' 2>/dev/null; then
  mapfile -t wheels < <(printf '%s\n' "${wheels[@]}" | grep -v '/pandas-')
fi
"$PYTHON" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" \
  "${wheels[@]}" || exit 1
export PYTHONPATH=$SITE:services${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
# What ran, for the log: the versions a failure would most likely come from.
"$PYTHON" - <<'EOF' 2>&1 | tee "$OUT/log"
import importlib.metadata as m
for name in ("torch", "autogluon.multimodal", "timm", "transformers", "lightning", "pandas", "numpy",
             "scikit-learn", "torchmetrics", "protobuf"):
    try:
        print(name, m.version(name))
    except m.PackageNotFoundError:
        print(name, "not installed")
EOF
"$PYTHON" -m bench.gpu --output "$OUTPUT" --devices "${DEVICES:-cuda}" "$@" 2>&1 | tee -a "$OUT/log"
status=${PIPESTATUS[0]}
cp "$OUTPUT/benchmarks/gpu.json" "$OUT/" 2>/dev/null
exit "$status"
