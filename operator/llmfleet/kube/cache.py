"""The operator's children in one cluster, kept current by a watch per kind.

A reconcile compares desired children with live ones; reading them from a watch-fed store
instead of listing them makes a no-op resync cost no request at all, and keeps a fleet of
thousands from listing a crowded namespace once per resource. A kind whose watch is not
synced (starting, reconnecting, cluster unreachable, watch forbidden) is not answered from
the store: the caller lists from the API server as before, so an outage still shows.
"""

from __future__ import annotations

import logging
import marshal
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from llmfleet import labels, metrics
from llmfleet.children import watched_kinds
from llmfleet.kube.ownership import foreign_entries
from llmfleet.kube.rest import KubeClient, KubeError, path_of
from llmfleet.kube.wakeups import Wakeups, status_changed

log = logging.getLogger(__name__)

# Every labelled child kind (llmfleet.children); Pods are read by Job, not by owner.
WATCHED_KINDS = watched_kinds()
MEMBER_WATCHED_KINDS = watched_kinds(in_owner_cluster=False)
WATCH_SECONDS = 240  # server-side timeout of one watch request; it is then resumed
RETRY_SECONDS: tuple[float, ...] = (1, 2, 5, 10, 20)
FORBIDDEN_RETRY_SECONDS: tuple[float, ...] = (1, 2, 5, 10, 20, 60)
GONE = 410
LIST_PAGE = 500


def parse_selector(selector: str) -> dict[str, str] | None:
    """Equality selectors (`a=b,c=d`) as a dict; None for anything else."""
    wanted = {}
    for term in selector.split(","):
        key, sep, value = term.partition("=")
        if not sep or key.endswith("!") or value.startswith("="):
            return None
        wanted[key.strip()] = value.strip()
    return wanted


def _slim(obj: dict[str, Any], kind: str) -> dict[str, Any]:
    """What a reconcile reads: managedFields are most of an object's size; only other
    writers' entries are kept (llmfleet.kube.ownership)."""
    meta = obj["metadata"]
    if "managedFields" in meta:
        meta["managedFields"] = foreign_entries(obj) or None
        if meta["managedFields"] is None:
            del meta["managedFields"]
    return {"kind": kind, **obj}


class WatchLoop:
    """List, then watch, one kind of a cluster in a thread; relists after a gap. Subclasses
    keep what they need of each object (`_replace` on a list, `_apply` per event)."""

    def __init__(self, client: KubeClient, kind: str, query: Mapping[str, str]) -> None:
        self.client = client
        self.kind = kind
        self.query = dict(query)
        self._synced = threading.Event()
        self._stop = threading.Event()
        self.restarts = 0
        self._thread = threading.Thread(
            target=self._run, name=f"watch-{client.cluster}-{kind}", daemon=True
        )

    def start(self) -> None:
        self._thread.start()

    @property
    def synced(self) -> bool:
        return self._synced.is_set()

    def stop(self) -> None:
        self._stop.set()
        self._set_synced(False)

    def wait_synced(self, timeout: float) -> bool:
        return self._synced.wait(timeout)

    def _replace(self, items: Iterable[dict[str, Any]]) -> None:
        """Takes a full listing; `items` is read once, page by page."""
        raise NotImplementedError

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        raise NotImplementedError

    def _run(self) -> None:
        failures = 0
        forbidden = False
        while not self._stop.is_set():
            try:
                version = self._relist()
                failures = 0
                if forbidden:
                    log.info("watching %s in cluster %s again", self.kind, self.client.cluster)
                    forbidden = False
                while not self._stop.is_set() and version:
                    version = self._follow(version)
            except Exception as error:  # noqa: BLE001 - any failure: relist after a pause
                self._set_synced(False)
                pauses = RETRY_SECONDS
                if isinstance(error, KubeError) and error.forbidden:
                    # A restarted API server refuses until its authorizer has read the roles,
                    # and a right may be granted later: reads go in place meanwhile, and the
                    # watch asks again, more slowly.
                    pauses = FORBIDDEN_RETRY_SECONDS
                    if not forbidden:
                        log.warning(
                            "cannot watch %s in cluster %s (%s): reading them in place until "
                            "it is allowed", self.kind, self.client.cluster, error.message,
                        )  # fmt: skip
                    forbidden = True
                else:
                    log.debug("watch of %s in %s failed: %s", self.kind, self.client.cluster, error)
                self._stop.wait(pauses[min(failures, len(pauses) - 1)])
                failures += 1
            self.restarts += 1

    def _relist(self) -> str:
        version = [""]

        def pages() -> Iterator[dict[str, Any]]:
            """The listing in pages, so a crowded cluster is never held parsed at once."""
            query = {**self.query, "limit": str(LIST_PAGE)}
            while True:
                body = self.client.request("GET", path_of(self.kind), query=query)
                version[0] = str(body.get("metadata", {}).get("resourceVersion", ""))
                yield from body.get("items", [])
                token = body.get("metadata", {}).get("continue")
                if not token:
                    return
                query = {**query, "continue": token}

        self._replace(pages())
        if not self._stop.is_set():
            self._set_synced(True)
        return version[0]

    def _follow(self, version: str) -> str:
        """Applies watch events from `version` on; returns where to resume, "" to relist."""
        query = {
            **self.query,
            "watch": "1",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(WATCH_SECONDS),
        }
        for event in self.client.stream(path_of(self.kind), query, read_timeout=WATCH_SECONDS + 30):
            if self._stop.is_set():
                return ""
            kind, obj = event.get("type"), event.get("object") or {}
            if kind == "ERROR":
                if obj.get("code") == GONE:
                    return ""  # the history moved on: list again
                raise RuntimeError(obj.get("message", "watch error"))
            version = obj.get("metadata", {}).get("resourceVersion", version)
            if kind != "BOOKMARK":
                self._apply(str(kind), obj)
        return version

    def _set_synced(self, synced: bool) -> None:
        (self._synced.set if synced else self._synced.clear)()
        metrics.CACHE_SYNCED.labels(self.client.cluster, self.kind).set(1 if synced else 0)


class Packed:
    """One stored object, serialized (marshal: fast, and this process only reads it back),
    with what lookups need beside it: a parsed Deployment takes about five times its
    serialized size, and a fleet keeps thousands."""

    __slots__ = ("data", "labels", "version")

    def __init__(self, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        self.labels: dict[str, str] = dict(meta.get("labels") or {})
        self.version = str(meta.get("resourceVersion") or "")
        self.data = marshal.dumps(obj)

    def object(self) -> dict[str, Any]:
        loaded: dict[str, Any] = marshal.loads(self.data)  # noqa: S302 - written by this process
        return loaded


class KindWatch(WatchLoop):
    """One kind's labelled objects in every namespace of a cluster: list, then watch."""

    def __init__(self, client: KubeClient, kind: str, wakeups: Wakeups | None = None) -> None:
        super().__init__(client, kind, {"labelSelector": labels.OWNER})
        self.wakeups = wakeups
        # namespace -> owner label value -> name -> object
        self._objects: dict[str, dict[str, dict[str, Packed]]] = {}
        # (namespace, name) -> owner label value: a lookup by name in a crowded namespace
        self._owners: dict[tuple[str, str], str] = {}
        self._lock = threading.Lock()

    def list(self, namespace: str, wanted: Mapping[str, str]) -> list[dict[str, Any]] | None:
        """Objects matching `wanted` labels (each a copy of its own), or None while the watch
        is not synced."""
        if not self._synced.is_set():
            return None
        with self._lock:
            pool = self._objects.get(namespace, {}).get(wanted[labels.OWNER], {})
            found = [
                packed
                for packed in pool.values()
                if all(packed.labels.get(k) == v for k, v in wanted.items())
            ]
        return [packed.object() for packed in found]

    def store(self, obj: dict[str, Any]) -> None:
        """Keeps an object the operator just wrote, unless the watch already has a newer one."""
        meta = obj["metadata"]
        if labels.OWNER not in (meta.get("labels") or {}):
            return  # outside the watch's selector: never reported, never kept
        packed = Packed(_slim(obj, self.kind))
        with self._lock:
            known = self._find(meta.get("namespace", ""), meta["name"])
            if known is not None and _newer(known.version, packed.version):
                return
            self._put(meta.get("namespace", ""), meta["name"], packed)

    def forget(self, namespace: str, name: str) -> None:
        with self._lock:
            self._drop(namespace, name)

    def _replace(self, items: Iterable[dict[str, Any]]) -> None:
        objects: dict[str, dict[str, dict[str, Packed]]] = {}
        owners: dict[tuple[str, str], str] = {}
        for item in items:
            packed = Packed(_slim(item, self.kind))
            meta = item["metadata"]
            namespace, owner = meta.get("namespace", ""), packed.labels.get(labels.OWNER, "")
            objects.setdefault(namespace, {}).setdefault(owner, {})[meta["name"]] = packed
            owners[(namespace, meta["name"])] = owner
        with self._lock:
            self._objects = objects
            self._owners = owners

    def _apply(self, event: str, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        namespace, name = meta.get("namespace", ""), meta["name"]
        packed = Packed(_slim(obj, self.kind)) if event != "DELETED" else None
        with self._lock:
            before = self._find(namespace, name)
            self._drop(namespace, name)
            if packed is not None:
                self._put(namespace, name, packed)
        if self.wakeups is not None and (
            event == "DELETED" or status_changed(before.object() if before else None, obj)
        ):
            self.wakeups.notify((meta.get("labels") or {}).get(labels.OWNER, ""))

    # --- the store ------------------------------------------------------------------------

    def _find(self, namespace: str, name: str) -> Packed | None:
        owner = self._owners.get((namespace, name))
        if owner is None:
            return None
        return self._objects.get(namespace, {}).get(owner, {}).get(name)

    def _put(self, namespace: str, name: str, packed: Packed) -> None:
        owner = packed.labels.get(labels.OWNER, "")
        self._objects.setdefault(namespace, {}).setdefault(owner, {})[name] = packed
        self._owners[(namespace, name)] = owner

    def _drop(self, namespace: str, name: str) -> None:
        owner = self._owners.pop((namespace, name), None)
        if owner is None:
            return
        by_owner = self._objects.get(namespace, {})
        pool = by_owner.get(owner, {})
        pool.pop(name, None)
        if not pool:
            by_owner.pop(owner, None)
        if not by_owner:
            self._objects.pop(namespace, None)


def _newer(known: str, candidate: str) -> bool:
    """Whether resource version `known` is later than `candidate` (etcd revisions here;
    anything else is not compared and the candidate wins)."""
    try:
        return int(known) > int(candidate)
    except ValueError:
        return False


class ChildCache:
    """Watches of one cluster's child kinds, started by `start`; a kind not started is not
    answered (its reader lists from the API server)."""

    def __init__(
        self,
        client: KubeClient,
        kinds: Iterable[str] = WATCHED_KINDS,
        wakeups: Wakeups | None = None,
    ) -> None:
        self.client = client
        self.kinds = frozenset(kinds)
        self.wakeups = wakeups
        self._watches: dict[str, KindWatch] = {}
        self._lock = threading.Lock()

    def start(self) -> ChildCache:
        with self._lock:
            for kind in sorted(self.kinds - set(self._watches)):
                watch = KindWatch(self.client, kind, self.wakeups)
                self._watches[kind] = watch
                watch.start()
        return self

    def watch(self, kind: str) -> KindWatch | None:
        with self._lock:
            return self._watches.get(kind)

    def list(self, kind: str, namespace: str, selector: str) -> list[dict[str, Any]] | None:
        wanted = parse_selector(selector)
        if wanted is None or labels.OWNER not in wanted:
            return None  # the watch holds labelled children only
        watch = self.watch(kind)
        if watch is None:
            return None
        return watch.list(namespace, wanted)

    def stored(self, kind: str, obj: dict[str, Any]) -> None:
        watch = self._watches.get(kind)
        if watch is not None:
            watch.store(obj)

    def forgotten(self, kind: str, namespace: str, name: str) -> None:
        watch = self._watches.get(kind)
        if watch is not None:
            watch.forget(namespace, name)

    def wait_synced(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        with self._lock:
            watches = list(self._watches.values())
        return all(w.wait_synced(max(0.0, deadline - time.monotonic())) for w in watches)

    def stop(self) -> None:
        with self._lock:
            for watch in self._watches.values():
                watch.stop()
