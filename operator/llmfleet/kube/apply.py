"""Level-based sync of one owner's children in one cluster: apply what differs, prune the rest.

Each child carries a hash of its desired form; a child whose live hash matches is not
written, so a resync or a restart over unchanged objects makes no write request.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from llmfleet import labels
from llmfleet.kube.cluster import ClusterApi
from llmfleet.kube.ownership import taken_fields

log = logging.getLogger(__name__)


def desired_hash(obj: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:20]


def with_hash(obj: Mapping[str, Any]) -> dict[str, Any]:
    """The object with the hash of what it asks for among its annotations; only the parts
    that change are new (readers never modify an object)."""
    meta = obj["metadata"]
    annotations = {**(meta.get("annotations") or {}), labels.APPLIED_HASH: desired_hash(obj)}
    return {**obj, "metadata": {**meta, "annotations": annotations}}


class ForeignObjectError(Exception):
    """A desired child's name is taken by an object the owner does not manage."""

    def __init__(self, ref: str, cluster: str, namespace: str) -> None:
        super().__init__(
            f"{ref} already exists in namespace {namespace} of cluster {cluster} and is not "
            "managed by this resource: delete or rename it"
        )


@dataclass
class SyncResult:
    applied: list[str] = field(default_factory=list)
    pruned: list[str] = field(default_factory=list)
    # Children whose fields another writer had changed, with those fields' paths.
    restored: dict[str, list[str]] = field(default_factory=dict)
    # Live children after the sync, by "Kind/name" (applied ones as the server returned them).
    live: dict[str, dict[str, Any]] = field(default_factory=dict)


def ref(obj: Mapping[str, Any]) -> str:
    return f"{obj['kind']}/{obj['metadata']['name']}"


def ensure_namespace(client: ClusterApi, name: str) -> bool:
    """Creates the namespace if it is missing; an existing one is never modified."""
    if client.get("Namespace", None, name) is not None:
        return False
    client.apply({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})
    return True


def sync(
    client: ClusterApi,
    namespace: str,
    owner: str,
    desired: Sequence[Mapping[str, Any]],
    kinds: Iterable[str],
    *,
    prune: bool = True,
    stage: str | None = None,
    create_only: Collection[str] = (),
    refuse_foreign: bool = False,
    before_first_write: Callable[[], object] | None = None,
) -> SyncResult:
    """Makes the owner's children of `kinds` in `namespace` equal `desired`.

    `stage` narrows the children to one stage of the owner (its other stages may share the
    cluster and kinds); kinds in `create_only` are written once and then left as they are
    (a Job's pod template is immutable: a changed Job is a new Job, under a new name); without
    `stage`, children of the owner's stages are not this part's and are left alone. With
    `refuse_foreign`, a child whose name is taken by an object without the owner's label
    raises ForeignObjectError instead of being taken over. `before_first_write` runs once,
    before anything is written (creating the namespace in a member cluster)."""
    result = SyncResult()
    selector = f"{labels.OWNER}={owner}"
    if stage is not None:
        selector += f",{labels.STAGE}={stage}"
    live_by_ref = {
        ref({"kind": kind, **item}): {"kind": kind, **item}
        for kind in kinds
        for item in client.list(kind, namespace, selector)
        if stage is not None or labels.STAGE not in (item["metadata"].get("labels") or {})
    }
    for obj in desired:
        stamped = with_hash(obj)
        key = ref(obj)
        live = live_by_ref.get(key)
        live_hash = ((live or {}).get("metadata", {}).get("annotations") or {}).get(
            labels.APPLIED_HASH
        )
        if live is not None and (
            obj["kind"] in create_only
            or (
                live_hash == stamped["metadata"]["annotations"][labels.APPLIED_HASH]
                and not _restore(stamped, live, client.cluster, result)
            )
        ):
            result.live[key] = live
            continue
        if live is None and refuse_foreign:
            meta = obj["metadata"]
            if client.get(obj["kind"], meta.get("namespace"), meta["name"]) is not None:
                raise ForeignObjectError(key, client.cluster, namespace)
        if before_first_write is not None and not result.applied:
            before_first_write()
        result.live[key] = {"kind": obj["kind"], **client.apply(stamped)}
        result.applied.append(key)
    if prune:
        wanted = {ref(obj) for obj in desired}
        for key, live in live_by_ref.items():
            if key not in wanted:
                client.delete(live["kind"], namespace, live["metadata"]["name"])
                result.pruned.append(key)
    return result


def _restore(
    desired: Mapping[str, Any], live: Mapping[str, Any], cluster: str, result: SyncResult
) -> bool:
    """Whether another writer changed fields of an unchanged child that the operator sets."""
    taken = taken_fields(desired, live)
    if taken:
        meta = live["metadata"]
        log.info(
            "restoring %s of %s/%s in %s %s, changed by another writer",
            ", ".join(taken), live.get("kind"), meta["name"], cluster, meta.get("namespace"),
        )  # fmt: skip
        result.restored[ref(desired)] = taken
    return bool(taken)


def remove_all(
    client: ClusterApi,
    namespace: str,
    owner: str,
    kinds: Iterable[str],
    *,
    stage: str | None = None,
) -> list[str]:
    return sync(client, namespace, owner, [], kinds, stage=stage).pruned
