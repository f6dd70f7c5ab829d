"""Custom resources in tests: create, read, and what their conditions say."""

from __future__ import annotations

import json
from typing import Any

from kubernetes import client

from llmfleet.api import GROUP, VERSION
from localfleet.fleet import raw_get

TABLE = "application/json;as=Table;v=v1;g=meta.k8s.io"


def get(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    )


def llm_deployment(name: str, location: str, **spec: Any) -> dict[str, Any]:
    """An LLMDeployment of one GPU at `location`; `spec` keys replace the defaults."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "LLMDeployment",
        "metadata": {"name": name},
        "spec": {
            "model": {"name": "meta-llama/Llama-3.1-8B-Instruct"},
            "placement": {"location": location},
            "gpu": {"count": 1},
            **spec,
        },
    }


def printed(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    """The resource's row as `kubectl get` prints it: column name -> cell."""
    path = f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/{plural}/{name}"
    status, body = raw_get(api, path, accept=TABLE)
    assert status == 200, body
    table = json.loads(body)
    names = [c["name"] for c in table["columnDefinitions"]]
    return dict(zip(names, table["rows"][0]["cells"], strict=True))


def condition(obj: dict[str, Any], type_: str) -> dict[str, Any]:
    conditions = (obj.get("status") or {}).get("conditions") or []
    return next((c for c in conditions if c["type"] == type_), {})


def current(obj: dict[str, Any]) -> bool:
    """The status describes the latest spec."""
    return (obj.get("status") or {}).get("observedGeneration") == obj["metadata"]["generation"]


def ready(obj: dict[str, Any]) -> bool:
    return current(obj) and condition(obj, "Ready").get("status") == "True"


def create_chat_endpoint(
    api: client.ApiClient,
    namespace: str,
    name: str,
    *,
    sites: list[dict[str, Any]],
    backends: list[dict[str, Any]],
    **spec: Any,
) -> None:
    body = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "ChatEndpoint",
        "metadata": {"name": name},
        "spec": {"modelAlias": "chat", "sites": sites, "backends": backends, **spec},
    }
    client.CustomObjectsApi(api).create_namespaced_custom_object(
        GROUP, VERSION, namespace, "chatendpoints", body
    )
