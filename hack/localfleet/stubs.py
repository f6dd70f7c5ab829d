"""Stub servers on 127.0.0.1 for the tests and the demo.

StubModel: an OpenAI-compatible model server that answers with its own name and counts what it
receives, so a caller sees where a gateway sent a request. MetricsStub: a model server's
/metrics (vLLM's `vllm:...`, llama.cpp's `llamacpp:...` gauges) with the values a test sets."""

from __future__ import annotations

import json
import math
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from localfleet import processes


class StubModel:
    def __init__(self, name: str) -> None:
        self.name = name
        self.requests: list[dict[str, Any]] = []
        self.authorizations: list[str] = []
        self.down = False
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_GET(self) -> None:
                self._send(200, {"object": "list", "data": [{"id": stub.name, "object": "model"}]})

            def do_POST(self) -> None:
                body = json.loads(
                    self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}"
                )
                if stub.down:
                    self._send(503, {"error": {"message": f"{stub.name} is down"}})
                    return
                stub.requests.append(body)
                stub.authorizations.append(
                    self.headers.get("Authorization", "") or self.headers.get("api-key", "")
                )
                self._send(200, completion(stub.name, body))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                processes.send_json(self, status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def completion(name: str, request: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{name}-{time.time_ns()}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.get("model", name),
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": f"answer from {name}"},
            }
        ],
        "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8},
    }


LabelSet = tuple[tuple[str, str], ...]


class MetricsStub:
    """GET /metrics in the Prometheus text format (0.0.4): the gauges set, with `# HELP` and
    `# TYPE` lines. `down` answers 503, as a model server that is not ready."""

    def __init__(self) -> None:
        self.gauges: dict[str, dict[LabelSet, float]] = {}
        self.scrapes = 0
        self.down = False
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.split("?")[0] != "/metrics":
                    self._send(404, b"not found\n")
                elif stub.down:
                    self._send(503, b"down\n")
                else:
                    with stub._lock:
                        stub.scrapes += 1
                    self._send(200, stub.exposition().encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, value: float, /, **labels: str) -> None:
        """Sets the gauge `name` (colons allowed: `vllm:num_requests_running`) for these labels."""
        with self._lock:
            self.gauges.setdefault(name, {})[tuple(sorted(labels.items()))] = value

    def clear(self) -> None:
        with self._lock:
            self.gauges.clear()

    def exposition(self) -> str:
        lines: list[str] = []
        with self._lock:
            for name, series in sorted(self.gauges.items()):
                lines += [f"# HELP {name} Set by the test.", f"# TYPE {name} gauge"]
                for labels, value in series.items():
                    label_text = ",".join(f'{key}="{_escape(val)}"' for key, val in labels)
                    selector = f"{name}{{{label_text}}}" if labels else name
                    lines.append(f"{selector} {_number(value)}")
        return "".join(f"{line}\n" for line in lines)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))
