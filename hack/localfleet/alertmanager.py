"""A real Alertmanager on 127.0.0.1 for the tests (Debian's `prometheus-alertmanager`, from
`make prometheus`) routing every alert to a webhook receiver on loopback, which keeps what it
was sent. Groups are flushed within a second so a fired alert arrives in seconds."""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml

from localfleet import processes
from localfleet.ports import free_port


class WebhookReceiver:
    """An HTTP endpoint on loopback that records each notification Alertmanager posts."""

    def __init__(self) -> None:
        self.notifications: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with receiver._lock:
                    receiver.notifications.append(body)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}/alerts"

    def start(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def alerts(self) -> list[dict[str, Any]]:
        """Every alert of every notification so far, in the order they arrived."""
        with self._lock:
            return [alert for n in self.notifications for alert in n.get("alerts", [])]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], *, what: str, timeout: float = 60
    ) -> dict[str, Any]:
        """The first alert received that satisfies `predicate`."""
        deadline = time.monotonic() + timeout
        while True:
            found = next((a for a in self.alerts() if predicate(a)), None)
            if found is not None:
                return found
            if time.monotonic() >= deadline:
                raise AssertionError(
                    f"no {what} reached the webhook in {timeout:.0f}s; received: {self.alerts()}"
                )
            time.sleep(0.25)


class LocalAlertmanager:
    def __init__(self, workdir: Path, *, binary: str = "prometheus-alertmanager") -> None:
        self.workdir = workdir
        self.binary = binary
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        """host:port, as Prometheus' alerting configuration names it."""
        return f"127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.workdir / "alertmanager.log"

    def start(self, webhook_url: str, *, timeout: float = 30) -> LocalAlertmanager:
        executable = shutil.which(self.binary)
        if executable is None:
            raise RuntimeError(f"{self.binary} is not on PATH; run `make prometheus`")
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "route": {
                "receiver": "webhook",
                "group_by": ["alertname", "cluster"],
                "group_wait": "1s",
                "group_interval": "1s",
                "repeat_interval": "1h",
            },
            "receivers": [
                {
                    "name": "webhook",
                    "webhook_configs": [{"url": webhook_url, "send_resolved": True}],
                }
            ],
        }
        config_file = self.workdir / "alertmanager.yml"
        config_file.write_text(yaml.safe_dump(config))
        command = [
            executable,
            f"--config.file={config_file}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",  # one instance: no gossip port
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while not self._ready():
            if time.monotonic() >= deadline:
                self.stop()
                raise TimeoutError(f"Alertmanager did not start in {timeout:.0f}s ({self.log})")
            time.sleep(0.1)
        return self

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            raise RuntimeError(
                f"alertmanager exited: {self.log.read_text(errors='replace')[-3000:]}"
            )
        return processes.answers(f"http://{self.address}/-/ready")

    def stop(self) -> None:
        processes.stop(self.process)
