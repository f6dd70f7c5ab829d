"""A real llama.cpp model server on 127.0.0.1 for the tests: a tiny random-weight llama model
written with the `gguf` package, and the `llama-server` binary from `make llama-server`
(hack/build-llama-server.sh) started with the arguments the operator renders for
`runtime: llamacpp`. Only the listen address and the model source are replaced: the container
listens on 0.0.0.0 and reads its model from a volume or the Hub, the local server listens on
127.0.0.1 and reads the tiny model.

    path = write_tiny_model(tmp / "tiny.gguf")
    with LocalLlamaServer(rendered_args(spec), path, tmp) as server:
        server.url   # http://127.0.0.1:PORT/v1, the OpenAI base URL (a gateway's api_base)
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from localfleet import processes
from localfleet.ports import free_port

# Requests to 127.0.0.1 never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

TINY_CONTEXT = 8192  # long prompts of the tests fit; the server takes it from the model
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
# Flags that name where the model comes from: the local server reads the tiny model instead.
_MODEL_FLAGS = ("--model", "-m", "--hf-repo", "-hf", "-hfr", "--model-url", "-mu")
_DROPPED_FLAGS = ("--hf-file", "-hff")  # only meaningful with a Hub repository
_HOST_FLAGS = ("--host",)
_PORT_FLAGS = ("--port",)


class LlamaServerMissingError(RuntimeError):
    """llama-server is not built."""


def bin_dir() -> Path:
    """The cache directory of the pinned llama-server (which may not be built yet)."""
    return processes.cache_dir("build-llama-server.sh")


def binary() -> Path:
    """The built llama-server; LlamaServerMissingError saying how to build it otherwise."""
    directory = bin_dir()
    path = directory / "llama-server"
    if not (directory / ".complete").is_file() or not path.is_file():
        raise LlamaServerMissingError(
            f"llama-server is not built (expected {path}); run `make llama-server` "
            "(hack/build-llama-server.sh: about 12 CPU-minutes, once)"
        )
    return path


_WORDS = (
    "the a an and of to in is it that for on with as was are be this by at or from model "
    "server token fleet cloud edge gpu hello world yes no user assistant system"
)


def _tiny_vocabulary() -> tuple[list[str], list[float], list[int]]:
    """A SentencePiece vocabulary: control tokens, the 256 byte-fallback tokens, some words
    and letters. Token strings are unique: llama.cpp aborts on repeats."""
    from gguf import TokenType  # noqa: PLC0415 - a test dependency, only needed here

    tokens = ["<unk>", "<s>", "</s>", "<|im_start|>", "<|im_end|>"]
    types = [TokenType.UNKNOWN, *[TokenType.CONTROL] * 4]
    scores = [0.0] * len(tokens)
    tokens += [f"<0x{byte:02X}>" for byte in range(256)]
    types += [TokenType.BYTE] * 256
    scores += [-1000.0] * 256  # byte fallback only where no piece matches
    # llama.cpp's SentencePiece tokenizer merges adjacent pieces only into pieces of the
    # vocabulary: every prefix of a word is one, so "\u2581hello" is one token, not six.
    words = [f"\u2581{word}" for word in _WORDS.split()]
    prefixes = [word[:end] for word in words for end in range(2, len(word) + 1)]
    pieces = ["\u2581", *"abcdefghijklmnopqrstuvwxyz", *prefixes]
    for piece in dict.fromkeys(pieces):  # ordered, without repeats
        tokens.append(piece)
        types.append(TokenType.NORMAL)
        scores.append(float(len(piece)))  # longer pieces first
    if len(set(tokens)) != len(tokens):
        raise AssertionError("token strings must be unique: llama.cpp aborts on repeats")
    return tokens, scores, [int(t) for t in types]


def write_tiny_model(path: Path, *, seed: int = 0) -> Path:
    """Writes a random-weight llama model of a few hundred KB: 2 layers, 64 wide, a
    SentencePiece vocabulary of about 450 tokens, an 8192-token context and a ChatML
    template. Its answers are gibberish."""
    import gguf  # noqa: PLC0415 - a test dependency, only needed here
    import numpy as np  # noqa: PLC0415

    n_embd, n_ff, n_layer, n_head, n_head_kv = 64, 128, 2, 4, 2
    head_dim = n_embd // n_head
    tokens, scores, types = _tiny_vocabulary()

    path.parent.mkdir(parents=True, exist_ok=True)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("llmfleet-tiny")
    writer.add_context_length(TINY_CONTEXT)
    writer.add_embedding_length(n_embd)
    writer.add_block_count(n_layer)
    writer.add_feed_forward_length(n_ff)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_head_kv)
    writer.add_rope_dimension_count(head_dim)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("llama")
    writer.add_token_list(tokens)
    writer.add_token_scores(scores)
    writer.add_token_types(types)
    writer.add_unk_token_id(0)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_add_bos_token(True)
    writer.add_add_eos_token(False)
    writer.add_chat_template(TINY_CHAT_TEMPLATE)

    rng = np.random.default_rng(seed)
    kv = n_head_kv * head_dim
    # Shapes in numpy order (rows = outputs); GGUF stores them reversed, as ggml expects.
    shapes: dict[str, tuple[int, ...]] = {"token_embd.weight": (len(tokens), n_embd)}
    for layer in range(n_layer):
        shapes |= {
            f"blk.{layer}.attn_norm.weight": (n_embd,),
            f"blk.{layer}.attn_q.weight": (n_embd, n_embd),
            f"blk.{layer}.attn_k.weight": (kv, n_embd),
            f"blk.{layer}.attn_v.weight": (kv, n_embd),
            f"blk.{layer}.attn_output.weight": (n_embd, n_embd),
            f"blk.{layer}.ffn_norm.weight": (n_embd,),
            f"blk.{layer}.ffn_gate.weight": (n_ff, n_embd),
            f"blk.{layer}.ffn_up.weight": (n_ff, n_embd),
            f"blk.{layer}.ffn_down.weight": (n_embd, n_ff),
        }
    shapes |= {"output_norm.weight": (n_embd,), "output.weight": (len(tokens), n_embd)}
    for name, shape in shapes.items():
        if name.endswith("norm.weight"):
            writer.add_tensor(name, np.ones(shape, dtype=np.float32))
        else:
            writer.add_tensor(name, (rng.standard_normal(shape) * 0.02).astype(np.float32))

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def container_args(deployment: Mapping[str, Any]) -> list[str]:
    """The model server container's arguments in a rendered Deployment."""
    containers = deployment["spec"]["template"]["spec"]["containers"]
    server = next((c for c in containers if c["name"] == "server"), containers[0])
    return [str(arg) for arg in server.get("args", [])]


def rendered_deployment(spec: Mapping[str, Any] | Any) -> dict[str, Any]:
    """The Deployment the operator renders for an LLMDeployment spec (a mapping as in the
    manifest, or an LLMDeploymentSpec), in the owner's cluster."""
    from llmfleet.api import LLMDeploymentSpec  # noqa: PLC0415 - the operator's package
    from llmfleet.render import llmdeployment  # noqa: PLC0415
    from llmfleet.render.common import Owner  # noqa: PLC0415

    if not isinstance(spec, LLMDeploymentSpec):
        spec = LLMDeploymentSpec.model_validate(spec)
    owner = Owner("LLMDeployment", "local", "local-llama", "uid-local")
    return llmdeployment.deployment(spec, owner, spec.placement.location, in_owner_cluster=True)


def rendered_args(spec: Mapping[str, Any] | Any) -> list[str]:
    """The llama-server arguments the operator renders for an LLMDeployment spec."""
    return container_args(rendered_deployment(spec))


def local_args(args: Sequence[str], model: Path, port: int) -> list[str]:
    """The rendered arguments with the listen address moved to 127.0.0.1:`port` and the model
    source replaced by the local `model`; everything else as rendered. ValueError when the
    render lacks a model source, --host or --port (a pod could not serve then)."""
    out: list[str] = []
    seen: set[str] = set()
    items = list(args)
    i = 0
    while i < len(items):
        flag, _, inline = items[i].partition("=")
        takes_value = flag in (*_MODEL_FLAGS, *_DROPPED_FLAGS, *_HOST_FLAGS, *_PORT_FLAGS)
        if not takes_value:
            out.append(items[i])
            i += 1
            continue
        if not inline:
            if i + 1 >= len(items):
                raise ValueError(f"{flag} has no value in the rendered arguments {items}")
            i += 1
        i += 1
        if flag in _MODEL_FLAGS:
            seen.add("model")
            out += ["--model", str(model)]
        elif flag in _HOST_FLAGS:
            seen.add("host")
            out += ["--host", "127.0.0.1"]
        elif flag in _PORT_FLAGS:
            seen.add("port")
            out += ["--port", str(port)]
    missing = {"model", "host", "port"} - seen
    if missing:
        raise ValueError(f"the rendered arguments {items} set no {', '.join(sorted(missing))}")
    return out


class LocalLlamaServer:
    """llama-server on 127.0.0.1 with the operator's rendered arguments and a local model."""

    def __init__(
        self,
        args: Sequence[str],
        model: Path,
        workdir: Path,
        *,
        executable: Path | None = None,
        port: int | None = None,
    ) -> None:
        self.rendered = list(args)
        self.model = model
        self.workdir = workdir
        self.executable = executable
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None
        self.command: list[str] = []

    @property
    def log(self) -> Path:
        return self.workdir / "llama-server.log"

    @property
    def address(self) -> str:
        """host:port, e.g. for a Prometheus scrape target."""
        if self.port is None:
            raise RuntimeError("llama-server was never started")
        return f"127.0.0.1:{self.port}"

    @property
    def root(self) -> str:
        """The server's root URL: /health and /metrics live here."""
        return f"http://{self.address}"

    @property
    def url(self) -> str:
        """The OpenAI base URL (what a gateway's api_base names): http://127.0.0.1:PORT/v1."""
        return f"{self.root}/v1"

    def start(self, *, timeout: float = 60) -> LocalLlamaServer:
        """Starts the server and returns once /health answers 200 (the model is loaded)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"llama-server is already running at {self.root}")
        executable = self.executable or binary()
        if self.port is None:
            self.port = free_port()
        self.command = [str(executable), *local_args(self.rendered, self.model, self.port)]
        self.workdir.mkdir(parents=True, exist_ok=True)
        with self.log.open("ab") as log:
            log.write(f"$ {' '.join(self.command)}\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                self.command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        try:
            self._wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def get(self, path: str, *, timeout: float = 10) -> tuple[int, bytes]:
        """GET a path of the root URL: (status, body), HTTP errors included."""
        try:
            with _OPENER.open(f"{self.root}{path}", timeout=timeout) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def post(self, path: str, body: Mapping[str, Any], *, timeout: float = 60) -> Any:
        """POST JSON to a path of the root URL; the decoded answer (HTTPError on failure)."""
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.root}{path}",
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        with _OPENER.open(request, timeout=timeout) as response:
            return json.load(response)

    def stream(self, path: str, body: Mapping[str, Any], *, timeout: float = 60) -> list[Any]:
        """POST JSON with `stream: true`; the decoded server-sent events up to [DONE]."""
        request = urllib.request.Request(  # noqa: S310 - loopback
            f"{self.root}{path}",
            data=json.dumps({**body, "stream": True}).encode(),
            headers={"Content-Type": "application/json", "Accept": "text/event-stream"},
            method="POST",
        )
        with _OPENER.open(request, timeout=timeout) as response:
            return processes.sse_events(raw.decode() for raw in response)

    def stop(self, *, timeout: float = 10) -> None:
        """SIGTERM, SIGKILL after `timeout`."""
        processes.stop(self.process, timeout)

    def log_tail(self, lines: int = 30) -> str:
        if not self.log.exists():
            return ""
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def __enter__(self) -> LocalLlamaServer:
        if self.process is None or self.process.poll() is not None:
            self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(
                    f"llama-server exited with {self.process.returncode}: "
                    f"{' '.join(self.command)}\n{self.log_tail()}"
                )
            try:
                status, body = self.get("/health", timeout=2)
                if status == 200:  # 503 while the model loads
                    return
                last = f"{status} {body[:200]!r}"
            except (urllib.error.URLError, OSError) as error:
                last = str(error)
            time.sleep(0.1)
        raise TimeoutError(
            f"llama-server at {self.root} not healthy after {timeout:.0f}s ({last}); "
            f"log {self.log}:\n{self.log_tail()}"
        )
