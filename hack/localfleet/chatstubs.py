"""Chat models on 127.0.0.1 whose behaviour a vulnerability scan knows in advance.

ChatStub speaks the OpenAI-compatible API a model server serves (`/v1/models`,
`/v1/chat/completions`, `/v1/completions`) in one of two ways: REFUSE answers every prompt with
a refusal, as a well-guarded model would; ECHO answers with the prompt itself, which every
prompt injection defeats (the injected text comes back word for word). The validation scan
test runs garak against both and expects the first to pass and the second to fail.

FastChatStub is a model server that answers at once, for timing what sits in front of one (the
gateway benchmark): its own process (asyncio, keep-alive), the same answer of CHUNKS words to
every chat completion, whole or streamed one word per server-sent event.

    python -m localfleet.chatstubs refuse|echo [NAME]   serve one until Ctrl-C
    python -m localfleet.chatstubs fast PORT [CHUNKS]   serve the fast one until Ctrl-C
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

from aiohttp import web

from localfleet import processes
from localfleet.paths import REPO_ROOT
from localfleet.ports import free_port

REFUSE: Literal["refuse"] = "refuse"
ECHO: Literal["echo"] = "echo"
FAST: Literal["fast"] = "fast"
Behaviour = Literal["refuse", "echo"]
REFUSAL = "I'm sorry, I can't help with that."


def last_user_text(body: dict[str, Any]) -> str:
    """The text of the request's last user turn (chat), or its prompt (completions)."""
    if "prompt" in body:
        prompt = body["prompt"]
        return prompt if isinstance(prompt, str) else " ".join(str(p) for p in prompt)
    for message in reversed(body.get("messages") or []):
        if message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            return content
        # Multimodal turns: the text parts.
        return " ".join(
            part.get("text", "")
            for part in content or []
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


class ChatStub:
    """An OpenAI-compatible model server on 127.0.0.1 (a free port) that refuses or echoes."""

    def __init__(self, behaviour: Behaviour, name: str = "stub/chat") -> None:
        if behaviour not in (REFUSE, ECHO):
            raise ValueError(f"behaviour must be {REFUSE!r} or {ECHO!r}, not {behaviour!r}")
        self.behaviour = behaviour
        self.name = name
        self.requests = 0
        self._lock = threading.Lock()
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                return

            def do_GET(self) -> None:
                if self.path.rstrip("/") in ("/v1/models", "/models"):
                    models = [{"id": stub.name, "object": "model", "owned_by": "llmfleet"}]
                    self._send(200, {"object": "list", "data": models})
                else:
                    # A scanner's reachability check GETs the base URL: any answer will do.
                    self._send(404, {"error": {"message": f"no route {self.path}"}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", 0))
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except json.JSONDecodeError:
                    self._send(400, {"error": {"message": "the body is not JSON"}})
                    return
                path = self.path.rstrip("/")
                if path.endswith("/chat/completions"):
                    chat = True
                elif path.endswith("/completions"):
                    chat = False
                else:
                    self._send(404, {"error": {"message": f"no route {self.path}"}})
                    return
                with stub._lock:
                    stub.requests += 1
                self._send(200, stub.answer(body, chat=chat))

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                processes.send_json(self, status, payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = int(self.server.server_address[1])
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        """The OpenAI-compatible base URL, as the operator renders it for a model's Service."""
        return f"http://127.0.0.1:{self.port}/v1"

    def reply(self, prompt: str) -> str:
        return REFUSAL if self.behaviour == REFUSE else prompt

    def answer(self, body: dict[str, Any], *, chat: bool) -> dict[str, Any]:
        prompt = last_user_text(body)
        text = self.reply(prompt)
        created = int(time.time())
        usage = {
            "prompt_tokens": len(prompt.split()),
            "completion_tokens": len(text.split()),
            "total_tokens": len(prompt.split()) + len(text.split()),
        }
        if chat:
            return {
                "id": f"chatcmpl-{time.time_ns()}",
                "object": "chat.completion",
                "created": created,
                "model": body.get("model", self.name),
                "choices": [
                    {
                        "index": 0,
                        "finish_reason": "stop",
                        "message": {"role": "assistant", "content": text},
                    }
                ],
                "usage": usage,
            }
        return {
            "id": f"cmpl-{time.time_ns()}",
            "object": "text_completion",
            "created": created,
            "model": body.get("model", self.name),
            "choices": [{"index": 0, "finish_reason": "stop", "text": text}],
            "usage": usage,
        }

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> ChatStub:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def fast_text(chunks: int) -> list[str]:
    """The fast stub's answer, one piece per streamed chunk (a word and its space)."""
    return [f"word{i} " for i in range(chunks)]


def fast_app(chunks: int) -> web.Application:
    """The fast stub's aiohttp application: answers prepared once, written as they are."""
    pieces = fast_text(chunks)
    text = "".join(pieces)
    usage = {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks}
    whole: dict[str, bytes] = {}
    streamed: dict[str, list[bytes]] = {}

    def answer(model: str) -> bytes:
        if model not in whole:
            whole[model] = json.dumps({
                "id": "chatcmpl-fast", "object": "chat.completion", "created": int(time.time()),
                "model": model, "usage": usage,
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
            }).encode()  # fmt: skip
        return whole[model]

    def events(model: str) -> list[bytes]:
        if model not in streamed:
            base = {"id": "chatcmpl-fast", "object": "chat.completion.chunk",
                    "created": int(time.time()), "model": model}  # fmt: skip
            deltas: list[dict[str, Any]] = [{"role": "assistant", "content": ""}]
            deltas += [{"content": piece} for piece in pieces]
            out = [
                base | {"choices": [{"index": 0, "delta": delta, "finish_reason": None}]}
                for delta in deltas
            ]
            out.append(base | {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            streamed[model] = [f"data: {json.dumps(e)}\n\n".encode() for e in out]
            streamed[model].append(b"data: [DONE]\n\n")
        return streamed[model]

    async def chat(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = str(body.get("model") or "stub")
        if not body.get("stream"):
            return web.Response(body=answer(model), content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for event in events(model):
            await response.write(event)
        await response.write_eof()
        return response

    async def models(_: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "stub", "object": "model"}]})

    app = web.Application()
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/v1/models", models)
    return app


def serve_fast(port: int, chunks: int) -> None:
    web.run_app(fast_app(chunks), host="127.0.0.1", port=port, print=None, access_log=None)


class FastChatStub:
    """The fast stub in a process of its own (its CPU time is not the caller's), on a free
    port of 127.0.0.1; `chunks` words per answer."""

    def __init__(self, chunks: int = 32) -> None:
        self.chunks = chunks
        self.port = free_port()
        hack = str(REPO_ROOT / "hack")
        path = os.pathsep.join(p for p in (hack, os.environ.get("PYTHONPATH", "")) if p)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "localfleet.chatstubs", FAST, str(self.port), str(chunks)],
            env={**os.environ, "PYTHONPATH": path},
        )
        deadline = time.monotonic() + 30
        while not processes.answers(f"{self.url}/models", timeout=1):
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.close()
                raise RuntimeError("the fast chat stub did not start")
            time.sleep(0.1)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def text(self) -> str:
        return "".join(fast_text(self.chunks))

    def close(self) -> None:
        processes.stop(self.process, timeout=5)

    def __enter__(self) -> FastChatStub:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()


def main(argv: list[str]) -> int:
    if argv[:1] == [FAST] and len(argv) in (2, 3):
        with contextlib.suppress(KeyboardInterrupt):
            serve_fast(int(argv[1]), int(argv[2]) if len(argv) == 3 else 32)
        return 0
    if not argv or argv[0] not in (REFUSE, ECHO):
        print(__doc__, file=sys.stderr)
        return 2
    behaviour: Behaviour = REFUSE if argv[0] == REFUSE else ECHO
    with ChatStub(behaviour, *argv[1:2]) as stub:
        print(f"{stub.behaviour} stub serving {stub.name!r} at {stub.url} (Ctrl-C to stop)")
        with contextlib.suppress(KeyboardInterrupt):
            stub.thread.join()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
