#!/usr/bin/env bash
# Prints the Python base image that docker/*.Dockerfile should build FROM (their PYTHON_IMAGE build
# argument), making one when none can be had:
#
#   docker/base-image.sh [PREFERRED]        # e.g. python:3.11.14-slim-bookworm
#
# 1. PREFERRED when the engine has it or can pull it;
# 2. else the local base $LABELLOOP_LOCAL_BASE (default labelloop-local/python:3.11-bookworm), built once
#    from Debian itself: debootstrap (minbase, bookworm, python3 + venv + ca-certificates) from the
#    Debian mirror apt uses on this machine, `docker import`, then `python` -> `python3` and this
#    machine's CA bundle (where registry traffic passes a TLS proxy, pip inside a build trusts only
#    that bundle; PIP_CERT and SSL_CERT_FILE point at it).
#
# Only the image name goes to stdout; progress goes to stderr. Needs a running Docker engine; as root
# it installs debootstrap with apt-get when missing. The CA bundle is copied into a temporary build
# context only, never into the repository.
set -euo pipefail

preferred="${1:-}"
local_base="${LABELLOOP_LOCAL_BASE:-labelloop-local/python:3.11-bookworm}"
suite="${DEBIAN_SUITE:-bookworm}"
ca_bundle="${LABELLOOP_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}"

log() { echo "base-image: $*" >&2; }

has_image() { docker image inspect "$1" >/dev/null 2>&1; }

if [ -n "$preferred" ]; then
  if has_image "$preferred"; then
    echo "$preferred"; exit 0
  fi
  if docker pull -q "$preferred" >/dev/null 2>&1; then
    log "pulled $preferred"; echo "$preferred"; exit 0
  fi
  log "cannot pull $preferred: using the local base $local_base"
fi
if has_image "$local_base"; then
  echo "$local_base"; exit 0
fi

# The mirror apt uses here (deb822 .sources or a one-line sources.list), unless DEBIAN_MIRROR says.
apt_mirror() {
  grep -hoE '(URIs:[[:space:]]*|^deb[[:space:]]+(\[[^]]*\][[:space:]]+)?)[a-z]+://[^[:space:]]+/debian/?([[:space:]]|$)' \
    /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null \
    | grep -oE '[a-z]+://[^[:space:]]+' | head -n 1
}
mirror="${DEBIAN_MIRROR:-$(apt_mirror || true)}"
if [ -z "$mirror" ]; then
  log "no Debian mirror found in apt's sources: set DEBIAN_MIRROR"; exit 1
fi
if ! command -v debootstrap >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null 2>&1 \
      || { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
  else
    log "debootstrap is missing (apt-get install debootstrap as root), or pass a pullable PREFERRED image"; exit 1
  fi
fi
if [ ! -r "$ca_bundle" ]; then
  log "no CA bundle at $ca_bundle: set LABELLOOP_CA_BUNDLE"; exit 1
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
log "debootstrap $suite from $mirror (about 1.5 min)"
debootstrap --variant=minbase --include=python3,python3-venv,ca-certificates \
  "$suite" "$work/rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
  || { tail -n 20 "$work/debootstrap.log" >&2; exit 1; }
# What an image never needs: downloaded packages, package lists, documentation.
rm -rf "$work"/rootfs/var/cache/apt/archives/*.deb "$work"/rootfs/var/lib/apt/lists/* \
  "$work"/rootfs/usr/share/doc/* "$work"/rootfs/usr/share/man/* "$work"/rootfs/usr/share/info/*
tar -C "$work/rootfs" -c . | docker import \
  --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
  --change 'CMD ["python3"]' - "$local_base-rootfs" >/dev/null

mkdir "$work/context"
cp "$ca_bundle" "$work/context/ca-certificates.crt"
cat >"$work/context/Dockerfile" <<EOF
FROM $local_base-rootfs
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
RUN ln -s /usr/bin/python3 /usr/local/bin/python
ENV LANG=C.UTF-8 \\
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt \\
    SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python"]
EOF
docker build -q --network host -t "$local_base" "$work/context" >/dev/null
docker image rm "$local_base-rootfs" >/dev/null
log "built $local_base ($(docker image inspect -f '{{.Size}}' "$local_base" | awk '{printf "%d MB", $1/1e6}'))"
echo "$local_base"
