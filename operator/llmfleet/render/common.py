"""Names, labels and ownership shared by every child the operator renders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet.names import MAX_LABEL_VALUE, bounded, owner_label, service_name

# Re-exported: renderers name children with these.
__all__ = [
    "MAX_LABEL_VALUE", "Owner", "Rendered", "bounded", "child_metadata", "owner_label", "refs",
    "service_name",
]  # fmt: skip


@dataclass(frozen=True)
class Owner:
    """The custom resource a child belongs to."""

    kind: str
    namespace: str
    name: str
    uid: str
    api_version: str = "llmfleet.io/v1alpha1"

    @property
    def instance(self) -> str:
        """The `app.kubernetes.io/instance` label value: the name, hashed past 63 characters."""
        return bounded(self.name)

    @property
    def label(self) -> str:
        """`KIND.NAMESPACE.NAME`, shortened with a hash when it exceeds a label value's size."""
        return owner_label(self.kind, self.namespace, self.name)

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def child_metadata(
    owner: Owner,
    name: str,
    *,
    in_owner_cluster: bool,
    extra_labels: dict[str, str] | None = None,
) -> dict[str, Any]:
    """Children in the owner's cluster get an ownerReference (garbage collection); children
    in other clusters only the owner label, and the finalizer removes them."""
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": owner.namespace,
        "labels": {
            labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
            labels.OWNER: owner.label,
            "app.kubernetes.io/instance": owner.instance,
            **(extra_labels or {}),
        },
    }
    if in_owner_cluster:
        metadata["ownerReferences"] = [owner.reference()]
    return metadata


@dataclass(frozen=True)
class Rendered:
    """A builder's result: the objects, the mode's security roles and what realizes each."""

    objects: list[dict[str, Any]]
    roles: tuple[str, ...]
    role_objects: dict[str, list[str]] = field(default_factory=dict)
    url: str = ""  # where callers reach the workload

    def segmentation_objects(self) -> list[str]:
        return sorted({ref for refs in self.role_objects.values() for ref in refs})


def refs(*objects: dict[str, Any]) -> list[str]:
    """`Kind/name` of each object, as status lists them."""
    return [f"{o['kind']}/{o['metadata']['name']}" for o in objects]
