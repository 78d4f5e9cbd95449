"""A plain `labelloop up` (no --secure) in a shell that exported the CLI's LABELLOOP_TLS_CA and
LABELLOOP_TOKEN for a secured cluster: its services serve plaintext, so `up` checks them, and they
call each other, in plaintext too, instead of failing on a TLS handshake with their own ports."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

from labelloop.cli.local import served_as_configured
from labelloop.cli.secure import prepare
from labelloop.client import LabelLoopClient
from labelloop.core.channels import CallerCredentials
from labelloop.core.config import SecurityConfig
from labelloop.sample_data import write_wine_tabular


def test_services_keep_tls_when_they_serve_it(tmp_path: Path) -> None:
    secure = prepare(tmp_path / "state", client_auth=True)
    assert served_as_configured(secure) == secure
    callers_only = SecurityConfig(tls_ca=secure.tls_ca, token="t")
    assert served_as_configured(callers_only) == SecurityConfig(token="t")


def test_plain_up_with_the_cli_ca_exported(tmp_path: Path) -> None:
    security = prepare(tmp_path / "state")  # a secured cluster's CA, as `up --secure` tells to export
    manifest = write_wine_tabular(tmp_path / "wine")
    env = {
        **os.environ,
        "LABELLOOP_STORAGE_BACKEND": "local",
        "LABELLOOP_TLS_CA": str(security.tls_ca),
        "LABELLOOP_TOKEN": (tmp_path / "state" / "admin.token").read_text(),
    }
    for name in ("LABELLOOP_TLS_CERT", "LABELLOOP_TLS_KEY", "LABELLOOP_AUTH_TOKENS_FILE"):
        env.pop(name, None)
    up = ["up", "--free-ports", "--data", str(tmp_path / "data"), "--import-root", str(tmp_path)]
    process = subprocess.Popen(
        [sys.executable, "-m", "labelloop.cli.main", *up],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
    )
    try:
        addresses: dict[str, str] = {}
        output: list[str] = []
        deadline = time.monotonic() + 300
        while len(addresses) < 5 and time.monotonic() < deadline:
            line = process.stdout.readline() if process.stdout else ""
            output.append(line)
            assert line, f"`labelloop up` exited with code {process.wait(30)}: {''.join(output)[-2000:]}"
            if match := re.match(r"\s*(\w+)\s+(127\.0\.0\.1:\d+)\s+metrics", line):
                addresses[match[1]] = match[2]
        assert len(addresses) == 5, "".join(output)
        plaintext = CallerCredentials()
        with LabelLoopClient(addresses["controller"], addresses["store"], credentials=plaintext) as client:
            client.create_dataset("wine", str(manifest), label_column="label")
            # The controller reads the dataset from the store: plaintext, as the store serves.
            experiment = client.create_experiment(
                "plain", dataset="wine", preset="tabular", batch_size=5, max_rounds=1
            )
        assert experiment.name == "experiments/plain"
        process.send_signal(signal.SIGTERM)
        assert process.wait(60) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(30)
