"""Model-server runtimes as data: image, port, health path and how each takes its arguments."""

from __future__ import annotations

from dataclasses import dataclass

MODEL_DIR = "/models"
CACHE_DIR = "/cache"
TMP_DIR = "/tmp"  # noqa: S108 - an emptyDir of the pod's own: the root filesystem is read-only


@dataclass(frozen=True)
class RuntimePreset:
    image: str
    port: int
    health_path: str
    gpu: bool  # GPU runtimes get a memory-backed /dev/shm
    api_path: str = "/v1"

    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        raise NotImplementedError

    def env(self) -> list[dict[str, str]]:
        """Environment the server needs beyond HF_HOME and HOME."""
        return []

    def fetch(self, uri: str | None, served_name: str) -> list[str] | None:
        """Command of an init container that puts the model where the server finds it, for
        servers that cannot fetch it themselves; None when the server fetches it."""
        return None


@dataclass(frozen=True)
class Vllm(RuntimePreset):
    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return [
            "--model", model, "--served-model-name", served_name,
            "--tensor-parallel-size", str(max(gpus, 1)), "--port", str(self.port),
            "--download-dir", CACHE_DIR,
        ]  # fmt: skip


@dataclass(frozen=True)
class Tgi(RuntimePreset):
    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return [
            "--model-id", model, "--num-shard", str(max(gpus, 1)), "--port", str(self.port),
            "--huggingface-hub-cache", CACHE_DIR,
        ]  # fmt: skip


OLLAMA_MODELS = f"{CACHE_DIR}/ollama"
# Pulls with a server of its own on the loopback (`ollama pull` talks to a server), then names
# the model as clients ask for it. The references are positional parameters, never code.
OLLAMA_PULL = """\
export OLLAMA_HOST=127.0.0.1:11434
ollama serve & server=$!
until ollama list >/dev/null 2>&1; do kill -0 "$server" || exit 1; sleep 1; done
ollama pull "$1" && { [ "$1" = "$2" ] || ollama cp "$1" "$2"; }
status=$?
kill "$server"; wait "$server"
exit "$status"
"""


@dataclass(frozen=True)
class Ollama(RuntimePreset):
    """The image's entrypoint is /bin/ollama and `serve` takes no arguments, so the rendered
    arguments are exactly `serve` (the API refuses spec.args for ollama). ollama serves the
    models in OLLAMA_MODELS, so an init container pulls the model into the cache volume
    before the server starts: the server is ready only with its model in place."""

    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return ["serve"]

    def env(self) -> list[dict[str, str]]:
        return [
            {"name": "OLLAMA_MODELS", "value": OLLAMA_MODELS},
            {"name": "OLLAMA_HOST", "value": f"0.0.0.0:{self.port}"},
        ]

    def fetch(self, uri: str | None, served_name: str) -> list[str] | None:
        return ["/bin/sh", "-c", OLLAMA_PULL, "pull", self.reference(uri, served_name), served_name]

    @staticmethod
    def reference(uri: str | None, served_name: str) -> str:
        """What `ollama pull` takes: a Hugging Face repository (hf://ORG/REPO[:QUANT]) through
        hf.co, otherwise the served name, a model of the Ollama library (llama3.1:8b)."""
        if uri and uri.startswith("hf://"):
            return "hf.co/" + uri.removeprefix("hf://")
        return served_name


@dataclass(frozen=True)
class LlamaCpp(RuntimePreset):
    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return [
            *self.source(model), "--alias", served_name,
            "--host", "0.0.0.0", "--port", str(self.port),  # noqa: S104
            "--n-gpu-layers", "999" if gpus else "0",
            "--metrics",  # /metrics: the load autoscaling reads (requests processing, deferred)
        ]  # fmt: skip

    @staticmethod
    def source(model: str) -> list[str]:
        """A local path, a Hub repository, or one GGUF file of it (org/repo/file.gguf)."""
        if model.startswith("/"):
            return ["--model", model]
        parts = model.split("/")
        if len(parts) > 2 and model.endswith(".gguf"):
            return ["--hf-repo", "/".join(parts[:2]), "--hf-file", "/".join(parts[2:])]
        return ["--hf-repo", model]


@dataclass(frozen=True)
class Triton(RuntimePreset):
    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return [
            "tritonserver", f"--model-repository={model}", f"--http-port={self.port}",
            "--model-control-mode=poll",
        ]  # fmt: skip


RUNTIMES: dict[str, RuntimePreset] = {
    "vllm": Vllm("vllm/vllm-openai:v0.6.3", 8000, "/health", gpu=True),
    "tgi": Tgi("ghcr.io/huggingface/text-generation-inference:2.4.0", 8080, "/health", gpu=True),
    "ollama": Ollama("ollama/ollama:0.3.14", 11434, "/", gpu=True),
    # b11312: the llama.cpp build llama-cpp-python (hack/versions.env) vendors, the one the
    # tests run (tests/integration/test_llama_server.py).
    "llamacpp": LlamaCpp("ghcr.io/ggml-org/llama.cpp:server-b11312", 8080, "/health", gpu=False),
    "triton": Triton(
        "nvcr.io/nvidia/tritonserver:24.09-vllm-python-py3", 8000, "/v2/health/ready", gpu=True
    ),
}
