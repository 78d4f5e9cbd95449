"""The controller's HTTP endpoint for Label Studio's webhooks.

Label Studio sends a webhook once, with a 1 s timeout and no retry, so a webhook cannot be the record
of an annotation: it only wakes the project's reconciliation early (reconcile.py reads the
annotations from Label Studio's API, the source of truth). Its content is therefore not trusted for
anything but the project id to wake, and a forged or lost webhook costs at most one reconciliation.
"""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger(__name__)

# Webhook bodies carry the whole task; anything much larger is not Label Studio's.
MAX_BODY_BYTES = 4 * 1024 * 1024


class Wakeups:
    """One event per Label Studio project id: set by a webhook, waited on by the project's labeler."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._events: dict[int, threading.Event] = {}

    def event(self, project_id: int) -> threading.Event:
        with self._lock:
            return self._events.setdefault(project_id, threading.Event())

    def wake(self, project_id: int) -> None:
        self.event(project_id).set()


# The controller process's wakeups: the webhook server sets them, every Label Studio labeler waits.
WAKEUPS = Wakeups()


def project_of(body: bytes) -> int | None:
    """The project id of a webhook body ({"action": ..., "project": {"id": N, ...}, ...})."""
    try:
        payload = json.loads(body)
    except ValueError:
        return None
    project = payload.get("project") if isinstance(payload, dict) else None
    project_id = project.get("id") if isinstance(project, dict) else project
    return project_id if isinstance(project_id, int) and not isinstance(project_id, bool) else None


class WebhookHandler(BaseHTTPRequestHandler):
    wakeups: Wakeups = WAKEUPS

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._answer(413, "webhook body too large")
            return
        project_id = project_of(self.rfile.read(length))
        if project_id is None:
            self._answer(400, 'not a Label Studio webhook: expected JSON with "project": {"id": N}')
            return
        self.wakeups.wake(project_id)
        self._answer(200, "ok")

    def do_GET(self) -> None:  # a probe: the endpoint is up
        self._answer(200, "ok")

    def _answer(self, status: int, text: str) -> None:
        data = (text + "\n").encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        log.debug("webhook: " + format, *args)


def serve_webhooks(host: str, port: int, wakeups: Wakeups = WAKEUPS) -> ThreadingHTTPServer:
    """Starts the endpoint on a daemon thread (it dies with the process) and returns its server."""
    handler = type("BoundWebhookHandler", (WebhookHandler,), {"wakeups": wakeups})
    server = ThreadingHTTPServer((host, port), handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="label-studio-webhooks", daemon=True).start()
    log.info("Label Studio webhooks: http://%s:%d/", host, server.server_address[1])
    return server
