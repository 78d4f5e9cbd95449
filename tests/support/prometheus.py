"""A real Prometheus server for tests (the Debian `prometheus` package), scraping loopback targets.

`start_prometheus(workdir, {"controller": "127.0.0.1:9105", ...})` writes a config with one job per
target and a 1 s scrape interval, starts the server on a free port and waits for /-/ready.
`PrometheusServer.wait_for_scrape(after)` waits until every target was scraped (and up) after a
moment, so a query sees what the services exposed at that moment.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.support.ports import free_port

MISSING = (
    "the `prometheus` binary is missing: `make prometheus-install` "
    "(or apt-get install prometheus, the Debian package ships prometheus and promtool)"
)


def prometheus_binary() -> str | None:
    return shutil.which("prometheus")


def promtool_binary() -> str | None:
    return shutil.which("promtool")


class PrometheusError(RuntimeError):
    pass


@dataclass
class PrometheusServer:
    url: str
    process: subprocess.Popen
    workdir: Path
    jobs: list[str]

    def api(self, path: str, **params: str) -> Any:
        """GETs /api/v1/{path} and returns its `data`, raising on an error status."""
        query = f"?{urllib.parse.urlencode(params)}" if params else ""
        try:
            with urllib.request.urlopen(f"{self.url}/api/v1/{path}{query}", timeout=10) as reply:
                body = json.load(reply)
        except urllib.error.HTTPError as error:
            raise PrometheusError(f"{path} {params}: {error.code} {error.read().decode()[:500]}") from None
        if body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; returns the vector's samples as {"metric": {...}, "value": [t, "v"]}."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr!r} gave a {data['resultType']}, not a vector")
        return data["result"]

    def targets(self) -> list[dict[str, Any]]:
        return self.api("targets", state="active")["activeTargets"]

    def wait_for_scrape(self, after: float, timeout: float = 30.0) -> None:
        """Waits until every job has a successful scrape that started after `after` (Unix seconds)."""
        deadline = time.monotonic() + timeout
        last: dict[str, float] = {}
        while time.monotonic() < deadline:
            # timestamp(up) is when each target was last scraped; up is 1 when that scrape worked.
            healthy = {s["metric"]["job"] for s in self.query("up") if s["value"][1] == "1"}
            last = {s["metric"]["job"]: float(s["value"][1]) for s in self.query("timestamp(up)")}
            if all(job in healthy and last.get(job, 0.0) > after for job in self.jobs):
                return
            time.sleep(0.25)
        raise TimeoutError(
            f"not every target was scraped after {after:.3f} within {timeout}s: last successful "
            f"scrapes {last}; targets: {[(t['labels'], t['health'], t['lastError']) for t in self.targets()]}"
        )

    def log(self) -> str:
        return (self.workdir / "prometheus.log").read_text(errors="replace")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(5)


def write_config(path: Path, targets: dict[str, str], scrape_interval: str = "1s") -> None:
    """One scrape job per target ("job name" -> "host:port"). JSON is valid YAML."""
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {"job_name": job, "scrape_timeout": scrape_interval, "static_configs": [{"targets": [address]}]}
            for job, address in targets.items()
        ],
    }
    path.write_text(json.dumps(config, indent=2))


def start_prometheus(
    workdir: Path, targets: dict[str, str], scrape_interval: str = "1s", timeout: float = 60.0
) -> PrometheusServer:
    binary = prometheus_binary()
    if binary is None:
        raise RuntimeError(MISSING)
    workdir.mkdir(parents=True, exist_ok=True)
    config = workdir / "prometheus.yml"
    write_config(config, targets, scrape_interval)
    port = free_port()
    args = [
        binary,
        f"--config.file={config}",
        f"--storage.tsdb.path={workdir / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}",
        "--storage.tsdb.retention.time=1h",
        "--log.level=warn",
    ]
    log = open(workdir / "prometheus.log", "wb")  # noqa: SIM115 - lives as long as the server
    process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, cwd=workdir)
    server = PrometheusServer(f"http://127.0.0.1:{port}", process, workdir, list(targets))
    try:
        _wait_ready(server, timeout)
    except Exception as error:
        server.stop()
        raise RuntimeError(
            f"Prometheus did not become ready ({error}); log:\n{server.log()[-3000:]}"
        ) from None
    return server


def _wait_ready(server: PrometheusServer, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"exited with {server.process.returncode}")
        try:
            with urllib.request.urlopen(f"{server.url}/-/ready", timeout=2) as reply:
                if reply.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.2)
    raise TimeoutError(f"/-/ready did not answer 200 within {timeout}s")
