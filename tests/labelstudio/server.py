"""A real Label Studio (the PyPI package, in its own virtualenv made by `make labelstudio`) on loopback
with SQLite in a temporary folder, and people who sign up and annotate through its REST API."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

ROOT = Path(__file__).resolve().parents[2]
VENV = ROOT / ".venv-labelstudio"
EXECUTABLE = VENV / "bin" / "label-studio"
ADMIN_EMAIL, ADMIN_PASSWORD = "admin@example.com", "labelloop-admin-1"
ADMIN_TOKEN = "labelloop0test0admin0token"  # a legacy API token, set at the first start
START_SECONDS = 240  # the first start migrates the SQLite database: about 45 s on 2 busy cores


def ensure_venv() -> str:
    """ "" when Label Studio's virtualenv is there (made now if need be), else why it cannot be made."""
    try:
        made = subprocess.run(
            ["make", "-s", "labelstudio"], cwd=ROOT, capture_output=True, text=True, timeout=1200
        )
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"`make labelstudio` could not run: {error}"
    if made.returncode != 0 or not EXECUTABLE.exists():
        return f"`make labelstudio` failed to make {VENV}: {(made.stdout + made.stderr)[-1500:]}"
    return ""


@dataclass
class Annotator:
    """A Label Studio user who signed up through the web form, with the API token it then has."""

    email: str
    token: str
    session: requests.Session  # logged in: what a browser of this user holds

    def annotate(self, url: str, task_id: int, choice: str, to_name: str = "features") -> int:
        """Submits a task's class as this user through the REST API; returns the annotation id.
        `to_name`: the object tag the choice is about (features, text or image)."""
        result = [choices_result(choice, to_name)]
        reply = requests.post(
            f"{url}/api/tasks/{task_id}/annotations/",
            headers={"Authorization": f"Token {self.token}"},
            json={"result": result, "lead_time": 1.5},
            timeout=30,
        )
        reply.raise_for_status()
        return int(reply.json()["id"])


def choices_result(choice: str, to_name: str) -> dict[str, Any]:
    return {"from_name": "label", "to_name": to_name, "type": "choices", "value": {"choices": [choice]}}


@dataclass
class LabelStudio:
    url: str
    data_dir: Path
    process: subprocess.Popen
    log_path: Path
    token: str = ADMIN_TOKEN
    annotators: dict[str, Annotator] = field(default_factory=dict)

    def get(self, path: str, **params: Any) -> Any:
        reply = requests.get(
            f"{self.url}{path}", headers={"Authorization": f"Token {self.token}"}, params=params, timeout=30
        )
        reply.raise_for_status()
        return reply.json()

    def sign_up(self, email: str, password: str = "labelloop-pass-1") -> Annotator:
        """A new user through the sign-up form (as a person would), then its API token."""
        if email in self.annotators:
            return self.annotators[email]
        session = requests.Session()
        session.get(f"{self.url}/user/signup/", timeout=30).raise_for_status()
        form = {
            "email": email,
            "password": password,
            "csrfmiddlewaretoken": session.cookies.get("csrftoken") or "",
            "how_find_us": "Other",
            "allow_newsletters": "false",
        }
        session.post(
            f"{self.url}/user/signup/", data=form, headers={"Referer": f"{self.url}/user/signup/"}, timeout=30
        ).raise_for_status()
        reply = session.get(f"{self.url}/api/current-user/token", timeout=30)
        assert reply.status_code == 200, f"sign-up of {email} failed: {reply.status_code} {reply.text[:300]}"
        annotator = Annotator(email, reply.json()["token"], session)
        self.annotators[email] = annotator
        return annotator

    def tasks(self, project_id: int) -> list[dict[str, Any]]:
        found, page = [], 1
        while True:
            reply = self.get("/api/tasks", project=project_id, fields="all", page=page, page_size=100)
            found.extend(reply["tasks"])
            if len(found) >= reply["total"] or not reply["tasks"]:
                return found
            page += 1

    def projects(self) -> list[dict[str, Any]]:
        return list(self.get("/api/projects", page_size=100)["results"])

    def stop(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(10)


def start_label_studio(folder: Path, port: int) -> LabelStudio:
    data_dir = folder / "data"
    log_path = folder / "label-studio.log"
    env = {
        **os.environ,
        "LABEL_STUDIO_BASE_DATA_DIR": str(data_dir),
        "LABEL_STUDIO_USERNAME": ADMIN_EMAIL,
        "LABEL_STUDIO_PASSWORD": ADMIN_PASSWORD,
        "LABEL_STUDIO_USER_TOKEN": ADMIN_TOKEN,
        # Legacy tokens (the SDK's "Token ..." header) are refused unless enabled at the first start.
        "LABEL_STUDIO_ENABLE_LEGACY_API_TOKEN": "true",
        # Its SSRF protection refuses webhooks to loopback, where the controller listens here.
        "SSRF_PROTECTION_ENABLED": "false",
        "SENTRY_DSN": "",
        "FRONTEND_SENTRY_DSN": "",
    }
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [str(EXECUTABLE), "start", "--no-browser", "--host", "127.0.0.1", "--port", str(port)],
            cwd=folder,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = LabelStudio(f"http://127.0.0.1:{port}", data_dir, process, log_path)
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"Label Studio exited ({process.returncode}): {log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{server.url}/health", timeout=2) as reply:
                if reply.status == 200:
                    return server
        except OSError:
            pass
        time.sleep(0.5)
    server.stop()
    tail = log_path.read_text()[-3000:]
    raise RuntimeError(f"Label Studio did not answer /health in {START_SECONDS}s: {tail}")
