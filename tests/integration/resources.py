"""Custom resources in tests: create, read, and what their conditions say."""

from __future__ import annotations

from typing import Any

from kubernetes import client

from llmfleet.api import GROUP, VERSION


def get(api: client.ApiClient, namespace: str, plural: str, name: str) -> dict[str, Any]:
    return dict(
        client.CustomObjectsApi(api).get_namespaced_custom_object(
            GROUP, VERSION, namespace, plural, name
        )
    )


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
