"""The output guard in the real LiteLLM proxy, with no cluster: a ChatEndpoint's gateway
objects rendered in-process by the operator's render functions, run from .venv-gateway on
127.0.0.1 in front of a small OpenAI-compatible model on 127.0.0.1 whose answers hold an API
key, an AWS access key, a private key and an e-mail address, streamed in chunks of a few
characters (so the keys are split across chunks)."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from llmfleet.api import ChatEndpointSpec
from llmfleet.api.common import SecretKeyRef
from llmfleet.render.common import Owner
from localfleet import gateway_run, processes

OWNER = Owner("ChatEndpoint", "team-a", "chat", "uid-1")
ALIAS = "chat"
MASTER = SecretKeyRef(name="chat-keys", key="master")
CLIENT_KEY = "sk-llmfleet-test-master-key"
OPENAI_KEY = "sk-proj-A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6Q7r8S9t0uVwX"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
EMAIL = "jane.doe@example.com"
PEM = (
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIEowIBAAKCAQEA0Z3VS5JJcds3xfn/ygWyF8PbnGy0AHB7MhgHcTz6sE2I2yPB\n"
    "aFDrBz9vFqU4yQIDAQABAoIBAH1tNV+x2pq8XfXh+Ig1GcH0RMk8ZXQXb0Ae8Qw5\n"
    "-----END RSA PRIVATE KEY-----"
)
SECRETS = (OPENAI_KEY, AWS_KEY, EMAIL, PEM)
ANSWER = (
    f"Here is what you asked for. The API key is {OPENAI_KEY} and the AWS access key is "
    f"{AWS_KEY}.\nThe deploy key:\n{PEM}\nQuestions go to {EMAIL}."
)
REDACTED = (
    "Here is what you asked for. The API key is [REDACTED:api-key] and the AWS access key is "
    "[REDACTED:aws-access-key].\nThe deploy key:\n[REDACTED:private-key]\nQuestions go to "
    "[REDACTED:email]."
)
# Asked with LONG, the model first writes enough harmless text that some of it has gone out
# before the first secret comes: a refusal then ends a stream that has begun.
LONG = "long"
PREAMBLE = "Let me explain this step by step, in plenty of harmless words first. " * 4
CHUNK_CHARS = 3


def answer_for(prompt: str) -> str:
    return PREAMBLE + ANSWER if prompt == LONG else ANSWER


class StubModel(BaseHTTPRequestHandler):
    """An OpenAI-compatible model: /v1/chat/completions, whole or streamed (SSE)."""

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)))
        text = answer_for(body["messages"][-1]["content"])
        base = {"id": "chatcmpl-stub", "created": int(time.time()), "model": body["model"]}
        if not body.get("stream"):
            self.reply(200, "application/json", json.dumps(base | {
                "object": "chat.completion",
                "choices": [{"index": 0, "finish_reason": "stop",
                             "message": {"role": "assistant", "content": text}}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 60, "total_tokens": 65},
            }).encode())  # fmt: skip
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        deltas = [{"role": "assistant", "content": ""}]
        deltas += [{"content": text[i : i + CHUNK_CHARS]} for i in range(0, len(text), CHUNK_CHARS)]
        for position, delta in enumerate([*deltas, {}]):
            finish = "stop" if position == len(deltas) else None
            event = base | {
                "object": "chat.completion.chunk",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")

    def do_GET(self) -> None:
        self.reply(200, "application/json", b'{"object": "list", "data": [{"id": "stub"}]}')

    def reply(self, status: int, content_type: str, payload: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base's name
        pass


@pytest.fixture(scope="module")
def model() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), StubModel)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def rendered(mode: str, model_url: str) -> list[dict[str, Any]]:
    """The objects the operator renders for a self-managed site of the endpoint."""
    spec = ChatEndpointSpec.model_validate({
        "modelAlias": ALIAS,
        "sites": [{"location": "onprem"}],
        "backends": [{"llmDeploymentRef": {"name": "stub"}}],
        "auth": {"apiKeySecretRef": {"name": MASTER.name, "key": MASTER.key}},
        "guardrails": {"output": mode},
    })  # fmt: skip
    return gateway_run.stub_site_objects(spec, OWNER, MASTER, model_url)


@pytest.fixture(scope="module")
def gateways(
    model: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, gateway_run.LocalGateway]]:
    """One gateway per mode (off, redact, block), started side by side."""
    if not gateway_run.LITELLM.exists():
        pytest.fail(f"{gateway_run.LITELLM} is missing: run `make gateway-venv`", pytrace=False)
    running: dict[str, gateway_run.LocalGateway] = {}
    try:
        for mode in ("off", "redact", "block"):
            workdir = tmp_path_factory.mktemp(f"gateway-{mode}")
            env = gateway_run.gateway_from_objects(
                rendered(mode, model), workdir, {(MASTER.name, MASTER.key): CLIENT_KEY}
            )
            running[mode] = gateway_run.LocalGateway(workdir, env)
        with ThreadPoolExecutor(len(running)) as pool:
            list(pool.map(lambda g: g.wait_ready(), running.values()))
        yield running
    finally:
        for started in running.values():
            started.stop()


def streamed_text(events: list[Any]) -> str:
    return "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in events
        for choice in event.get("choices") or ()
    )


def leaks(raw: str) -> list[str]:
    """The secrets (or a telling piece of one) that reached the client."""
    pieces = [OPENAI_KEY[:12], OPENAI_KEY[-12:], AWS_KEY, "jane.doe@", "MIIEowIBAAKCAQEA"]
    return [piece for piece in pieces if piece in raw]


def guard_counts(gateway: gateway_run.LocalGateway) -> dict[tuple[str, str], float]:
    counts = {}
    for family in text_string_to_metric_families(gateway.metrics()):
        for sample in family.samples:
            if sample.name == "llmfleet_gateway_output_guard_total":
                assert sample.labels["model"] == ALIAS
                counts[(sample.labels["action"], sample.labels["kind"])] = sample.value
    return counts


def test_off_passes_answers_unchanged_and_adds_no_hook(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    off = gateways["off"]
    assert "output_guard" not in (Path(off.log).parent / "config.yaml").read_text()
    status, body = off.chat(CLIENT_KEY, "hello", ALIAS)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == ANSWER
    status, events, raw = off.stream(CLIENT_KEY, "hello", ALIAS)
    assert status == 200, raw
    assert streamed_text(events) == ANSWER
    assert guard_counts(off) == {}


def test_redact_replaces_the_secrets_of_a_whole_answer(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    status, body = gateways["redact"].chat(CLIENT_KEY, "hello", ALIAS)
    assert status == 200, body
    assert body["choices"][0]["message"]["content"] == REDACTED
    assert leaks(json.dumps(body)) == []


@pytest.mark.parametrize("prompt", ["hello", LONG])
def test_redact_replaces_the_secrets_of_a_streamed_answer_split_across_chunks(
    gateways: dict[str, gateway_run.LocalGateway], prompt: str
) -> None:
    status, events, raw = gateways["redact"].stream(CLIENT_KEY, prompt, ALIAS)
    assert status == 200, raw
    assert streamed_text(events) == answer_for(prompt).replace(ANSWER, REDACTED)
    assert raw.rstrip().endswith("data: [DONE]")
    assert leaks(raw) == []


def test_block_refuses_a_whole_answer_with_400(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    status, body = gateways["block"].chat(CLIENT_KEY, "hello", ALIAS)
    assert status == 400, body
    assert "withheld" in body["error"]["message"]
    assert "api-key" in body["error"]["message"]
    assert leaks(json.dumps(body)) == []


def test_block_refuses_a_stream_before_its_first_chunk_with_400(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    status, events, raw = gateways["block"].stream(CLIENT_KEY, "hello", ALIAS)
    assert status == 400, raw
    assert "withheld" in events[0]["error"]["message"]
    assert leaks(raw) == []


def test_block_ends_a_begun_stream_with_an_error_before_the_secret(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    status, events, raw = gateways["block"].stream(CLIENT_KEY, LONG, ALIAS)
    assert status == 200, raw
    text = streamed_text(events)
    assert text, raw  # some of the harmless text went out first
    assert PREAMBLE.startswith(text) or text.startswith(PREAMBLE)
    assert OPENAI_KEY[:3] not in text[len(PREAMBLE) :]
    assert "withheld" in events[-1]["error"]["message"]
    assert "[DONE]" not in raw
    assert leaks(raw) == []


def test_the_metrics_count_what_was_redacted_and_blocked(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    redact, block = gateways["redact"], gateways["block"]
    for _ in range(2):
        redact.chat(CLIENT_KEY, "hello", ALIAS)
        block.chat(CLIENT_KEY, "hello", ALIAS)
    redacted = guard_counts(redact)
    for kind in ("api-key", "aws-access-key", "private-key", "email"):
        assert redacted[("redacted", kind)] >= 2, redacted
    assert redacted[("redacted", "phone")] == 0  # every series exists from the start
    assert not [key for key in redacted if key[0] == "blocked"]
    blocked = guard_counts(block)
    assert blocked[("blocked", "api-key")] >= 2, blocked
    assert blocked[("blocked", "email")] == 0  # the first secret of an answer refuses it


def test_with_the_guard_on_calls_it_cannot_read_are_refused(
    gateways: dict[str, gateway_run.LocalGateway],
) -> None:
    request = {"model": ALIAS, "input": "hello"}
    status, body = post(gateways["redact"], "/v1/responses", request)
    assert status == 400, body
    assert "responses" in json.dumps(body)
    assert leaks(json.dumps(body)) == []


def post(gateway: gateway_run.LocalGateway, path: str, body: dict[str, Any]) -> tuple[int, Any]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{gateway.port}{path}",
        json.dumps(body).encode(),
        {"Content-Type": "application/json", "Authorization": f"Bearer {CLIENT_KEY}"},
    )
    try:
        with processes.LOOPBACK.open(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
