"""A real llama.cpp server with the arguments the operator renders for `runtime: llamacpp`.

Needs no cluster: the tiny model is written here and llama-server (`make llama-server`) runs
on 127.0.0.1. Only the listen address and the model source differ from the pod's arguments.
"""

from __future__ import annotations

import re
import urllib.error
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from llmfleet.placement import autoscale
from localfleet import llamacpp

ALIAS = "acme/tiny-chat"
SPEC: dict[str, Any] = {
    "model": {"name": ALIAS},
    "placement": {"location": "edge"},
    "runtime": "llamacpp",
    "gpu": {"count": 0},
}
CHAT = {"model": ALIAS, "messages": [{"role": "user", "content": "hello"}], "max_tokens": 8}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[llamacpp.LocalLlamaServer]:
    try:
        executable = llamacpp.binary()
    except llamacpp.LlamaServerMissingError as error:
        pytest.fail(str(error), pytrace=False)
    workdir = tmp_path_factory.mktemp("llama")
    model = llamacpp.write_tiny_model(workdir / "tiny.gguf")
    args = llamacpp.rendered_args(SPEC)
    with llamacpp.LocalLlamaServer(args, model, workdir, executable=executable) as running:
        yield running


def test_the_server_runs_the_rendered_arguments(server: llamacpp.LocalLlamaServer) -> None:
    rendered = llamacpp.rendered_args(SPEC)
    assert server.command[1:] == llamacpp.local_args(rendered, server.model, server.port or 0)
    # Only the model source and the listen address were replaced.
    replaced = ("--hf-repo", ALIAS, "--host", rendered[rendered.index("--host") + 1], "8080")
    kept = [a for a in rendered if a not in replaced]
    assert all(arg in server.command for arg in kept)
    status, body = server.get("/health")
    assert status == 200, body


def test_chat_completion_answers_with_content_and_usage(
    server: llamacpp.LocalLlamaServer,
) -> None:
    answer = server.post("/v1/chat/completions", CHAT)
    message = answer["choices"][0]["message"]
    assert message["role"] == "assistant"
    assert message["content"], answer
    usage = answer["usage"]
    assert usage["prompt_tokens"] > 0
    assert 0 < usage["completion_tokens"] <= CHAT["max_tokens"]
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]


def test_the_alias_is_the_served_model_name(server: llamacpp.LocalLlamaServer) -> None:
    """The gateway routes with the model's name (hosted_vllm/<name>): the server lists it."""
    status, body = server.get("/v1/models")
    assert status == 200
    assert ALIAS in body.decode()


def test_chat_completion_streams(server: llamacpp.LocalLlamaServer) -> None:
    events = server.stream("/v1/chat/completions", CHAT)
    assert len(events) >= 2, events
    text = "".join(
        (choice.get("delta") or {}).get("content") or ""
        for event in events
        for choice in event.get("choices", [])
    )
    assert text, events
    assert events[0]["object"] == "chat.completion.chunk"


def test_a_long_prompt_fits_the_context(server: llamacpp.LocalLlamaServer) -> None:
    long_chat = {**CHAT, "messages": [{"role": "user", "content": "hello world " * 1500}]}
    answer = server.post("/v1/chat/completions", long_chat)
    assert 3000 < answer["usage"]["prompt_tokens"] < llamacpp.TINY_CONTEXT


def test_metrics_expose_what_autoscaling_queries(server: llamacpp.LocalLlamaServer) -> None:
    server.post("/v1/chat/completions", CHAT)
    status, body = server.get("/metrics")
    assert status == 200, body
    names = set(re.findall(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)\s", body.decode(), re.MULTILINE))
    wanted = autoscale.RUNTIME_LOAD["llamacpp"]
    assert set(wanted) <= names, sorted(names)
    assert "llamacpp:prompt_tokens_total" in names


def test_the_rendered_arguments_serve_metrics_without_extra_args() -> None:
    """Autoscaling reads llama-server's /metrics: the render turns it on by itself."""
    assert "--metrics" in llamacpp.rendered_args(SPEC)


def test_a_stopped_server_refuses(tmp_path: Path) -> None:
    model = llamacpp.write_tiny_model(tmp_path / "tiny.gguf")
    server = llamacpp.LocalLlamaServer(llamacpp.rendered_args(SPEC), model, tmp_path)
    server.start()
    server.stop()
    with pytest.raises(urllib.error.URLError):
        server.get("/health", timeout=2)
