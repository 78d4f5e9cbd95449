# syntax=docker/dockerfile:1
# The slim image of the dataset store, scorer, selector and round controller:
#   python -m labelloop.<store|scorer|selector|controller>
# No torch, AutoGluon or CUDA: pyproject.toml's base dependencies only (docker/requirements.py derives
# the list, requirements.lock gives the versions); the trainer has its own image.
# Build from the repository root: docker build -f docker/service.Dockerfile -t labelloop .

# Pinned base (bump deliberately; pin a digest too for reproducible builds).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
COPY pyproject.toml requirements.lock docker/requirements.py /src/
# Binary wheels only, so no compiler is needed here and none can leak into the final stage.
RUN pip install --no-cache-dir pip==26.3 \
 && python /src/requirements.py /src/pyproject.toml labelstudio > /tmp/requirements.txt \
 && pip install --no-cache-dir --only-binary=:all: \
      -r /tmp/requirements.txt -c /src/requirements.lock
# Out goes what no service imports at run time: the packages' own test suites (pandas/tests alone is
# 39 MB), Cython sources, pip and setuptools (nothing is installed into a running container; pytz's
# pkg_resources import is optional), and two of label-studio-sdk's dependencies that only its converters
# for masks and NLP exports import (OpenCV 162 MB, NLTK 14 MB); the Label Studio connector never calls them.
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && find "$site" -type d -name tests -prune -exec rm -rf {} + \
 && find "$site" -type f \( -name '*.pyx' -o -name '*.pxd' -o -name '*.pxi' \) -delete \
 && pip uninstall -q -y opencv-python-headless nltk pip setuptools
# LabelLoop itself goes to its own folder, so a change under services/ rebuilds only this small layer and
# the dependency layers above stay cached (pip from a throwaway venv: the service venv has none left).
# The last line imports every service and the connector: a cut too deep fails the build, not a pod.
COPY README.md /src/
COPY services /src/services
RUN python -m venv /opt/tools \
 && /opt/tools/bin/pip install -q --no-cache-dir --no-deps --target /opt/labelloop /src \
 && PYTHONPATH=/opt/labelloop python -c "import labelloop.store.service, labelloop.scorer.service, \
labelloop.selector.service, labelloop.controller.service, labelloop.controller.label_studio.project; \
from label_studio_sdk import LabelStudio"

FROM ${PYTHON_IMAGE}
# A fixed non-root UID/GID: the chart's securityContext runs as 10001 too.
RUN groupadd --system --gid 10001 labelloop \
 && useradd --system --uid 10001 --gid 10001 --home-dir /home/labelloop --create-home \
      --shell /usr/sbin/nologin labelloop \
 && install -d -o 10001 -g 10001 /var/cache/labelloop
COPY --from=builder /opt/venv /opt/venv
COPY --from=builder /opt/labelloop /opt/labelloop
# The chart mounts emptyDirs on /tmp and the cache dir; the root filesystem can stay read-only.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONPATH=/opt/labelloop \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    LABELLOOP_BIND_HOST=0.0.0.0 \
    LABELLOOP_CACHE_DIR=/var/cache/labelloop \
    XDG_CACHE_HOME=/var/cache/labelloop/xdg
WORKDIR /home/labelloop
USER 10001:10001
# gRPC 50051-50055 and /metrics 9101-9105 (store, trainer, scorer, selector, controller).
EXPOSE 50051 50053 50054 50055 9101 9103 9104 9105
CMD ["python", "-m", "labelloop.controller"]
