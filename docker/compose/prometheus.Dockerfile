# syntax=docker/dockerfile:1
# Prometheus for compose.yaml: the binary of Debian's `prometheus` package (the one the tests use) on the
# same Python base as the LabelLoop images, run as UID 10001. compose.yaml mounts prometheus.yml.
# Build from this folder: docker build -f prometheus.Dockerfile -t labelloop-local/prometheus:bookworm docker/compose

ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder
# Only the server binary leaves this stage (it links libc alone); its web assets and users stay here.
# The base's Debian release fixes the version (bookworm: 2.42); pinning it again would only break on
# its security updates.
# hadolint ignore=DL3008
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/*

FROM ${PYTHON_IMAGE}
RUN groupadd --system --gid 10001 prometheus \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin prometheus \
 && install -d -o 10001 -g 10001 /prometheus
COPY --from=builder /usr/bin/prometheus /usr/local/bin/prometheus
USER 10001:10001
EXPOSE 9090
ENTRYPOINT ["/usr/local/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
