"""What every local process the tests and the demo start shares: stopping it politely, asking
whether it answers, its cache directory, and reading and writing the JSON of its HTTP API."""

from __future__ import annotations

import json
import subprocess
import urllib.request
from collections.abc import Iterable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from localfleet.paths import HACK_DIR

# Requests to 127.0.0.1 never go through an HTTP proxy from the environment.
LOOPBACK = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def stop(process: subprocess.Popen[bytes] | None, timeout: float = 20) -> None:
    """SIGTERM (the process shuts down cleanly), SIGKILL after `timeout`."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def answers(url: str, timeout: float = 2) -> bool:
    """GET `url` on loopback answers 200."""
    try:
        with LOOPBACK.open(url, timeout=timeout) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def cache_dir(script: str) -> Path:
    """The cache directory a hack/ build script prints with --print-bin-dir (which may not be
    built yet)."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / script), "--print-bin-dir"],
        stdout=subprocess.PIPE,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip())


def sse_events(lines: Iterable[str]) -> list[Any]:
    """The JSON events of an OpenAI-style server-sent event stream, up to `data: [DONE]`."""
    events: list[Any] = []
    for line in lines:
        text = line.strip()
        if not text.startswith("data:"):
            continue
        data = text.removeprefix("data:").strip()
        if data == "[DONE]":
            break
        events.append(json.loads(data))
    return events


def send_json(handler: BaseHTTPRequestHandler, status: int, payload: Any) -> None:
    """An HTTP stub's JSON answer."""
    data = json.dumps(payload).encode()
    handler.send_response(status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    handler.wfile.write(data)
