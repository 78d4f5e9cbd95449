#!/bin/sh
# `weed mini` (master, volume server, filer and S3 gateway in one process) with one S3 identity made of
# S3_ACCESS_KEY / S3_SECRET_KEY, written to /tmp (the root filesystem is read-only), as the chart's
# objectStore does with its Secret. Extra arguments go to `weed mini`.
set -eu
: "${S3_ACCESS_KEY:?set S3_ACCESS_KEY}" "${S3_SECRET_KEY:?set S3_SECRET_KEY}"
umask 077
cat >/tmp/identities.json <<JSON
{"identities": [{"name": "labelloop",
  "credentials": [{"accessKey": "${S3_ACCESS_KEY}", "secretKey": "${S3_SECRET_KEY}"}],
  "actions": ["Admin", "Read", "Write", "List", "Tagging"]}]}
JSON
exec weed mini -dir=/data -ip=127.0.0.1 -ip.bind=0.0.0.0 -s3.config=/tmp/identities.json \
  -master.telemetry=false -admin.ui=false "$@"
