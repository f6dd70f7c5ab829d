"""A small REST client over the official client's connection and credential handling.

Children are plain dicts and each kind's URL comes from one table, so one code path applies,
lists and deletes every kind (the generated per-kind methods validate and convert each
argument and result into typed models, which these dicts do not need)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlencode

import orjson
from kubernetes import client

from llmfleet import metrics

FIELD_MANAGER = "llmfleet"
FORBIDDEN = 403
NOT_FOUND = 404
TOO_MANY_REQUESTS = 429
THROTTLED_ATTEMPTS = 6


def retry_after(header: str | None) -> float:
    """Seconds a throttled request waits: the server's Retry-After, within 1 to 30."""
    try:
        return min(30.0, max(1.0, float(header or 1)))
    except ValueError:
        return 1.0


@dataclass(frozen=True)
class KindPath:
    prefix: str  # /api/v1 or /apis/GROUP/VERSION
    plural: str
    namespaced: bool


KINDS: Mapping[str, KindPath] = {
    "Namespace": KindPath("/api/v1", "namespaces", namespaced=False),
    "Node": KindPath("/api/v1", "nodes", namespaced=False),
    "Secret": KindPath("/api/v1", "secrets", namespaced=True),
    "ConfigMap": KindPath("/api/v1", "configmaps", namespaced=True),
    "Service": KindPath("/api/v1", "services", namespaced=True),
    "ServiceAccount": KindPath("/api/v1", "serviceaccounts", namespaced=True),
    "Pod": KindPath("/api/v1", "pods", namespaced=True),
    "Deployment": KindPath("/apis/apps/v1", "deployments", namespaced=True),
    "PodDisruptionBudget": KindPath("/apis/policy/v1", "poddisruptionbudgets", namespaced=True),
    "NetworkPolicy": KindPath("/apis/networking.k8s.io/v1", "networkpolicies", namespaced=True),
    "Job": KindPath("/apis/batch/v1", "jobs", namespaced=True),
    "CronJob": KindPath("/apis/batch/v1", "cronjobs", namespaced=True),
    "Ingress": KindPath("/apis/networking.k8s.io/v1", "ingresses", namespaced=True),
    "LLMDeployment": KindPath("/apis/llmfleet.io/v1alpha1", "llmdeployments", namespaced=True),
    "ChatEndpoint": KindPath("/apis/llmfleet.io/v1alpha1", "chatendpoints", namespaced=True),
    "MLPipeline": KindPath("/apis/llmfleet.io/v1alpha1", "mlpipelines", namespaced=True),
    "FleetPolicy": KindPath("/apis/llmfleet.io/v1alpha1", "fleetpolicies", namespaced=False),
}


SERVER_ERROR = 500


class KubeError(Exception):
    """A failed request: the HTTP status (0 when the cluster could not be reached) and reason."""

    def __init__(self, status: int, message: str, cluster: str) -> None:
        super().__init__(f"{cluster}: {status or 'unreachable'}: {message}")
        self.status = status
        self.message = message
        self.cluster = cluster

    @property
    def unreachable(self) -> bool:
        """No answer at all: connection refused, TLS failure, timeout."""
        return self.status == 0

    @property
    def server_error(self) -> bool:
        """The API server answered that it failed (5xx): not the request's fault."""
        return self.status >= SERVER_ERROR

    @property
    def transient(self) -> bool:
        """Unreachable or failing: nothing is moved or deleted on such an answer."""
        return self.unreachable or self.server_error

    @property
    def forbidden(self) -> bool:
        return self.status == FORBIDDEN


def path_of(kind: str, namespace: str | None = None, name: str | None = None) -> str:
    kind_path = KINDS[kind]
    path = kind_path.prefix
    if kind_path.namespaced and namespace:
        path += f"/namespaces/{quote(namespace)}"
    path += f"/{kind_path.plural}"
    if name:
        path += f"/{quote(name)}"
    return path


class KubeClient:
    """Requests to one cluster; every request is counted by verb and outcome."""

    def __init__(self, api: client.ApiClient, cluster: str, timeout: float = 30) -> None:
        self.api = api
        self.cluster = cluster
        self.timeout = timeout

    def request(
        self,
        method: str,
        path: str,
        *,
        query: Mapping[str, str] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> Any:
        url_path = path + (f"?{urlencode(query)}" if query else "")
        headers = {"Accept": "application/json", "Content-Type": content_type}
        verb = "APPLY" if content_type == "application/apply-patch+yaml" else method
        for attempt in range(THROTTLED_ATTEMPTS):
            try:
                method_, url, headers_, body_, _ = self.api.param_serialize(
                    method, url_path, header_params=headers, body=body,
                    auth_settings=["BearerToken"],
                )  # fmt: skip
                response = self.api.call_api(
                    method_, url, headers_, body_, _request_timeout=self.timeout
                )
                response.read()  # type: ignore[no-untyped-call]
            except Exception as error:  # refused, TLS, timeouts: the cluster is unreachable
                metrics.API_REQUESTS.labels(self.cluster, verb, "error").inc()
                raise KubeError(0, str(error).splitlines()[0][:300], self.cluster) from error
            metrics.API_REQUESTS.labels(self.cluster, verb, str(response.status)).inc()
            if response.status != TOO_MANY_REQUESTS or attempt == THROTTLED_ATTEMPTS - 1:
                break
            # Throttled (API Priority and Fairness): wait as long as the server asks, then
            # send the same request again; a throttled cluster is not an unreachable one.
            time.sleep(retry_after(response.headers.get("Retry-After")))
        data: Any = orjson.loads(response.data) if response.data else {}
        if response.status >= 400:
            raise KubeError(response.status, str(data.get("message", data))[:1000], self.cluster)
        return data

    def stream(
        self, path: str, query: Mapping[str, str], *, read_timeout: float
    ) -> Iterator[dict[str, Any]]:
        """The events of a watch request, one JSON object per line, until the server ends it."""
        try:
            method, url, headers, body, _ = self.api.param_serialize(
                "GET", f"{path}?{urlencode(query)}", header_params={"Accept": "application/json"},
                auth_settings=["BearerToken"],
            )  # fmt: skip
            response = self.api.call_api(
                method, url, headers, body, _request_timeout=(self.timeout, read_timeout)
            )
        except Exception as error:
            metrics.API_REQUESTS.labels(self.cluster, "WATCH", "error").inc()
            raise KubeError(0, str(error).splitlines()[0][:300], self.cluster) from error
        metrics.API_REQUESTS.labels(self.cluster, "WATCH", str(response.status)).inc()
        raw = response.response
        try:
            if response.status >= 400:
                data = orjson.loads(raw.data or b"{}")
                raise KubeError(response.status, str(data.get("message", data)), self.cluster)
            pending = b""
            for chunk in raw.stream(64 * 1024, decode_content=True):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line.strip():
                        yield orjson.loads(line)
        finally:
            raw.release_conn()

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return dict(self.request("GET", path_of(kind, namespace, name)))
        except KubeError as error:
            if error.status == NOT_FOUND:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        query = {"labelSelector": label_selector} if label_selector else None
        return list(self.request("GET", path_of(kind, namespace), query=query).get("items", []))

    def apply(self, obj: Mapping[str, Any], *, subresource: str = "") -> dict[str, Any]:
        """Server-side apply as the `llmfleet` field manager (force: the operator owns these)."""
        meta = obj["metadata"]
        path = path_of(obj["kind"], meta.get("namespace"), meta["name"])
        if subresource:
            path += f"/{subresource}"
        return dict(
            self.request(
                "PATCH",
                path,
                query={"fieldManager": FIELD_MANAGER, "force": "true"},
                body=orjson.dumps(obj).decode(),
                content_type="application/apply-patch+yaml",
            )
        )

    def delete(self, kind: str, namespace: str | None, name: str) -> bool:
        """Deletes with background propagation; False when it was already gone."""
        try:
            self.request(
                "DELETE",
                path_of(kind, namespace, name),
                body={"propagationPolicy": "Background"},
            )
        except KubeError as error:
            if error.status != NOT_FOUND:
                raise
            return False
        return True
