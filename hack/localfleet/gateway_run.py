"""Runs a gateway exactly as the operator rendered it, on 127.0.0.1, with LiteLLM from
.venv-gateway: the ConfigMap's files, and the environment built from the Deployment (Secret
references resolved the way the kubelet would). The objects come from a cluster
(`rendered_gateway`) or straight from the operator's render functions
(`gateway_from_objects`)."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from llmfleet.api import ChatEndpointSpec
from llmfleet.api.common import SecretKeyRef
from llmfleet.render import gateway
from llmfleet.render.common import Owner
from localfleet import llamacpp, processes
from localfleet.llamacpp import LocalLlamaServer
from localfleet.paths import REPO_ROOT
from localfleet.ports import free_port

LITELLM = REPO_ROOT / ".venv-gateway" / "bin" / "litellm"


def rendered_gateway(
    api: client.ApiClient, namespace: str, name: str, workdir: Path
) -> dict[str, str]:
    """Writes the gateway's config files into `workdir`; returns its resolved environment."""
    core = client.CoreV1Api(api)
    config_map = api.sanitize_for_serialization(core.read_namespaced_config_map(name, namespace))
    deployment = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)

    def secret(secret_name: str, key: str) -> str:
        data = core.read_namespaced_secret(secret_name, namespace).data
        return base64.b64decode(data[key]).decode()

    return write_gateway(config_map, api.sanitize_for_serialization(deployment), workdir, secret)


def gateway_from_objects(
    objects: Sequence[Mapping[str, Any]], workdir: Path, secrets: Mapping[tuple[str, str], str]
) -> dict[str, str]:
    """The same from a site's rendered objects (gateway.self_managed_site), no cluster needed:
    `secrets` holds the value of each Secret key the Deployment refers to, by (name, key)."""
    by_kind = {obj["kind"]: obj for obj in objects}
    return write_gateway(
        by_kind["ConfigMap"], by_kind["Deployment"], workdir, lambda name, key: secrets[(name, key)]
    )


def stub_site_objects(
    spec: ChatEndpointSpec, owner: Owner, master_key: SecretKeyRef, model_url: str
) -> list[dict[str, Any]]:
    """The operator's render of the spec's first site, routing to one model server at
    `model_url` (a stub or llama-server on 127.0.0.1) as its only backend, `stub`."""
    backend = gateway.ResolvedBackend(
        name="stub", location="onprem", weight=1, fallback_only=False,
        model="hosted_vllm/stub", api_base=model_url, llm_deployment="stub", cluster="onprem",
        port=8000, ready=1,
    )  # fmt: skip
    site = gateway.self_managed_site(
        spec, owner, spec.sites[0], [backend], cluster="onprem", in_owner_cluster=True,
        master_key=master_key, metrics_namespace="monitoring",
    )  # fmt: skip
    return list(site.objects)


def write_gateway(
    config_map: Mapping[str, Any],
    deployment: Mapping[str, Any],
    workdir: Path,
    secret: Callable[[str, str], str],
) -> dict[str, str]:
    """Writes the ConfigMap's files into `workdir`; returns the gateway container's environment
    with each Secret reference resolved by `secret(name, key)`."""
    workdir.mkdir(parents=True, exist_ok=True)
    for file_name, text in (config_map.get("data") or {}).items():
        (workdir / file_name).write_text(text)
    env = {}
    for var in deployment["spec"]["template"]["spec"]["containers"][0].get("env") or []:
        if var.get("value") is not None:
            env[var["name"]] = var["value"]
            continue
        ref = var["valueFrom"]["secretKeyRef"]
        env[var["name"]] = secret(ref["name"], ref["key"])
    return env | {"PYTHONPATH": str(workdir), "HOME": str(workdir)}


def resolve_service(workdir: Path, service: str, namespace: str, url: str) -> int:
    """Points the gateway's routes to the in-cluster Service `service` (its api_base
    http://SERVICE.NAMESPACE.svc:PORT/v1) at `url`, as cluster DNS would send them to the pod;
    returns how many routes it changed."""
    config_file = workdir / "config.yaml"
    config = yaml.safe_load(config_file.read_text())
    prefix = f"http://{service}.{namespace}.svc:"
    changed = 0
    for route in config.get("model_list") or []:
        params = route.get("litellm_params") or {}
        if str(params.get("api_base", "")).startswith(prefix):
            params["api_base"] = url
            changed += 1
    config_file.write_text(yaml.safe_dump(config, sort_keys=False))
    return changed


class LocalGateway:
    def __init__(self, workdir: Path, env: dict[str, str]) -> None:
        if not LITELLM.exists():
            raise RuntimeError(f"{LITELLM} is missing: run `make gateway-venv`")
        self.port = free_port()
        self.log = workdir / "litellm.log"
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(
                [str(LITELLM), "--config", str(workdir / "config.yaml"),
                 "--host", "127.0.0.1", "--port", str(self.port)],
                env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip

    def wait_ready(self, timeout: float = 240) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the gateway exited; see {self.log}")
            try:
                url = f"http://127.0.0.1:{self.port}/health/readiness"
                with urllib.request.urlopen(url, timeout=2):
                    return
            except OSError:
                time.sleep(0.5)
        raise RuntimeError(f"the gateway did not start in {timeout:.0f}s; see {self.log}")

    def chat(self, key: str | None, content: str, model: str = "chat-default") -> tuple[int, Any]:
        code, _, body = self.ask(key, content, model)
        return code, body

    def ask(self, key: str | None, content: str, model: str) -> tuple[int, dict[str, str], Any]:
        """A chat completion: status, response headers (lower-case names) and JSON body."""
        body = json.dumps({"model": model, "messages": [{"role": "user", "content": content}]})
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/chat/completions", body.encode(), headers
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:  # noqa: S310 - loopback
                found = {k.lower(): v for k, v in response.headers.items()}
                return response.status, found, json.loads(response.read())
        except urllib.error.HTTPError as error:
            found = {k.lower(): v for k, v in error.headers.items()}
            text = error.read().decode()
            try:
                return error.code, found, json.loads(text)
            except ValueError:
                return error.code, found, text

    def stream(
        self, key: str | None, content: str, model: str = "chat-default"
    ) -> tuple[int, list[Any], str]:
        """A streamed chat completion: status, the JSON of each `data:` event up to `[DONE]`
        (an error answer's JSON body as the one event when the status is not 200), and the raw
        body."""
        body = {"model": model, "messages": [{"role": "user", "content": content}], "stream": True}
        headers = {"Content-Type": "application/json"}
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/v1/chat/completions", json.dumps(body).encode(), headers
        )
        try:
            with processes.LOOPBACK.open(request, timeout=60) as response:
                raw = response.read().decode()
                status = response.status
        except urllib.error.HTTPError as error:
            raw = error.read().decode()
            try:
                return error.code, [json.loads(raw)], raw
            except ValueError:
                return error.code, [], raw
        return status, processes.sse_events(raw.splitlines()), raw

    def metrics(self) -> str:
        url = f"http://127.0.0.1:{self.port}/metrics/"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def stop(self) -> None:
        processes.stop(self.process, timeout=30)


@contextmanager
def before_llamacpp(
    api: client.ApiClient, namespace: str, llm: str, gateway: str, workdir: Path
) -> Iterator[tuple[LocalGateway, LocalLlamaServer]]:
    """The gateway `gateway` as rendered, ready on 127.0.0.1, in front of llama-server started
    with the arguments the operator rendered for the LLMDeployment `llm` (runtime llamacpp),
    loading a tiny random-weight model; both stop on leaving."""
    deployment = client.AppsV1Api(api).read_namespaced_deployment(llm, namespace)
    args = llamacpp.container_args(api.sanitize_for_serialization(deployment))
    model = llamacpp.write_tiny_model(workdir / f"{llm}.gguf")
    with LocalLlamaServer(args, model, workdir / "llama").start() as server:
        env = rendered_gateway(api, namespace, gateway, workdir / "gateway")
        if resolve_service(workdir / "gateway", llm, namespace, server.url) == 0:
            raise RuntimeError(f"the gateway {gateway} has no route to {llm}")
        running = LocalGateway(workdir / "gateway", env)
        try:
            running.wait_ready()
            yield running, server
        finally:
            running.stop()
