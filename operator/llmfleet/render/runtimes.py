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


@dataclass(frozen=True)
class Ollama(RuntimePreset):
    def args(self, model: str, served_name: str, gpus: int) -> list[str]:
        return []  # ollama serves every pulled model; the model is named per request


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
    "llamacpp": LlamaCpp("ghcr.io/ggerganov/llama.cpp:server-b4000", 8080, "/health", gpu=False),
    "triton": Triton(
        "nvcr.io/nvidia/tritonserver:24.09-vllm-python-py3", 8000, "/v2/health/ready", gpu=True
    ),
}
