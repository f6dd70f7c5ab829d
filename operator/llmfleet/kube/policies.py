"""The FleetPolicies and the namespaces' labels, kept current by watches of the hub, as the
residency of a namespace reads them.

Fail-closed: while either watch is not synced they are listed from the API server, and a
failed list is an error (the reconcile retries) rather than a namespace without policy.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from llmfleet.api.fleetpolicy import FleetPolicySpec
from llmfleet.kube.capacity import SummaryWatch
from llmfleet.kube.rest import KubeClient, path_of
from llmfleet.placement.policy import NamedPolicy, Residency, policies_for

log = logging.getLogger(__name__)

# Name, labels, and whether the namespace is being deleted.
NamespaceLabels = tuple[str, tuple[tuple[str, str], ...], bool]


def namespace_labels(obj: Mapping[str, Any]) -> NamespaceLabels:
    meta = obj.get("metadata") or {}
    return (
        str(meta.get("name", "")),
        tuple(sorted((meta.get("labels") or {}).items())),
        bool(meta.get("deletionTimestamp")),
    )


def named_policy(obj: Mapping[str, Any]) -> NamedPolicy | None:
    name = str((obj.get("metadata") or {}).get("name", ""))
    try:
        return NamedPolicy(name, FleetPolicySpec.model_validate(obj.get("spec") or {}))
    except ValidationError as error:  # the CRD validates; an older or edited schema may not
        log.warning("FleetPolicy %s is not readable, it is ignored: %s", name, error)
        return None


class PolicyWatch:
    """`on_change` is told the namespace whose rules changed, or "" for every namespace."""

    def __init__(self, client: KubeClient, on_change: Callable[[str], None] | None = None) -> None:
        self.client = client

        def namespace_changed(key: str, gone: bool) -> None:
            if on_change is not None and not gone:  # a deleted namespace's workloads are gone
                on_change(key.partition("/")[2])

        def policy_changed(_: str, __: bool) -> None:
            if on_change is not None:
                on_change("")

        self.namespaces: SummaryWatch[NamespaceLabels] = SummaryWatch(
            client, "Namespace", namespace_labels, on_change=namespace_changed
        )
        self.policies: SummaryWatch[NamedPolicy] = SummaryWatch(
            client, "FleetPolicy", named_policy, on_change=policy_changed
        )

    def start(self) -> PolicyWatch:
        self.namespaces.start()
        self.policies.start()
        return self

    def stop(self) -> None:
        self.namespaces.stop()
        self.policies.stop()

    def wait_synced(self, timeout: float) -> bool:
        return self.namespaces.wait_synced(timeout) and self.policies.wait_synced(timeout)

    def residency(self, namespace: str) -> Residency:
        policies = self.policies.values()
        if policies is None:
            listed = self.client.request("GET", path_of("FleetPolicy"))
            policies = [p for p in map(named_policy, listed.get("items", [])) if p is not None]
        if not policies:
            return Residency(namespace=namespace)
        labels = self._labels(namespace)
        return policies_for(labels, policies, namespace)

    def terminating(self, namespace: str) -> bool:
        """Whether the namespace is being deleted, as the watch last saw it (False while the
        watch is not synced: the reconcile then runs and finds out)."""
        if not self.namespaces.synced:
            return False
        found = self.namespaces.get(namespace)
        return found is not None and found[2]

    def _labels(self, namespace: str) -> dict[str, str]:
        if self.namespaces.synced:
            found = self.namespaces.get(namespace)
            if found is not None:
                return dict(found[1])
        body = self.client.request("GET", path_of("Namespace", name=namespace))
        return dict((body.get("metadata") or {}).get("labels") or {})
