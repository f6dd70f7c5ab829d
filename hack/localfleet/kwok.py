"""Runs the fleet's clusters as real control planes on loopback with `kwokctl --runtime binary`.

Each cluster is created with its own ports, chosen here for all clusters at once: kwokctl
would choose them itself only among ports nothing listens on yet, so clusters created side by
side, or next to a stopped one, would be given the same ports.
"""

from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path

import yaml
from kubernetes import client
from kubernetes import config as kubeconfig_loader

from localfleet import components
from localfleet.paths import HACK_DIR, kwok_clusters_dir
from localfleet.topology import ClusterSpec

KWOKCTL = str(HACK_DIR / "kwokctl.sh")
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
# Clusters remember the simulation they were created with (a label on the system namespace),
# so a change to it recreates them instead of testing against the old one.
STAGES_STAMP = hashlib.sha256(STAGES_FILE.read_bytes() + SERVICE_CIDR.encode()).hexdigest()[:12]
# An apiserver on 2 busy cores can take a minute or two to become ready.
START_TIMEOUT = "5m"
# After a restart the controller manager and scheduler take over once the leases of the
# stopped ones expire (15 s), and the kwok controller each node's lease (at once when `stop`
# removed them, else once they expire: 200 s).
LEADER_LEASES = ("kube-controller-manager", "kube-scheduler")
NODE_LEASES = "kube-node-lease"
LEADING_TIMEOUT = 240.0
START_ATTEMPTS = 2
STOP_TIMEOUT = 60.0
# The ports of one cluster's processes in the binary runtime, as kwokctl options.
PORT_OPTIONS = (
    "etcdPeerPort", "etcdPort", "kubeApiserverPort", "kwokControllerPort",
    "kubeControllerManagerPort", "kubeSchedulerPort",
)  # fmt: skip
# Counted down from here, as kwokctl does: below Linux's ephemeral range (32768-60999), so no
# client connection takes them.
HIGHEST_PORT = 32767
LOWEST_PORT = 10000


def recorded_ports(clusters_dir: Path) -> set[int]:
    """Every port a cluster in kwokctl's work directory was created with, running or stopped."""
    ports: set[int] = set()
    for config in clusters_dir.glob("*/kwok.yaml"):
        try:
            docs = list(yaml.safe_load_all(config.read_text()))
        except (OSError, yaml.YAMLError):
            continue  # being written by a create next to this one: its ports are handed out
        for doc in docs:
            for component in (doc or {}).get("components") or []:
                for port in component.get("ports") or []:
                    ports |= {int(port[k]) for k in ("port", "hostPort") if port.get(k)}
    return ports


def port_is_free(port: int) -> bool:
    for host in ("127.0.0.1", ""):
        with socket.socket() as sock:
            try:
                sock.bind((host, port))
            except OSError:
                return False
    return True


def pick_ports(
    count: int, taken: Iterable[int], is_free: Callable[[int], bool] = port_is_free
) -> list[int]:
    """`count` ports, highest first, that no cluster recorded and nothing listens on."""
    taken = set(taken)
    picked: list[int] = []
    for port in range(HIGHEST_PORT, LOWEST_PORT, -1):
        if port not in taken and is_free(port):
            picked.append(port)
            if len(picked) == count:
                return picked
    raise RuntimeError(f"no {count} free ports between {LOWEST_PORT} and {HIGHEST_PORT}")


class PortAllocator:
    """Hands out each cluster's ports; safe to call from the threads that create clusters."""

    def __init__(
        self, clusters_dir: Path | None = None, is_free: Callable[[int], bool] = port_is_free
    ) -> None:
        self._clusters_dir = clusters_dir
        self._is_free = is_free
        self._lock = threading.Lock()
        self._handed_out: set[int] = set()

    def ports(self) -> dict[str, int]:
        with self._lock:
            clusters_dir = self._clusters_dir or kwok_clusters_dir()
            taken = recorded_ports(clusters_dir) | self._handed_out
            picked = pick_ports(len(PORT_OPTIONS), taken, self._is_free)
            self._handed_out |= set(picked)
        return dict(zip(PORT_OPTIONS, picked, strict=True))


def kwokctl_configuration(
    bin_dir: Path, kube_version: str, ports: dict[str, int] | None = None
) -> dict[str, object]:
    """kwokctl settings: local binaries only (nothing downloaded), everything on 127.0.0.1."""
    return {
        "apiVersion": "config.kwok.x-k8s.io/v1alpha1",
        "kind": "KwokctlConfiguration",
        "options": {
            "runtime": "binary",
            "bindAddress": "127.0.0.1",
            "kubeVersion": kube_version,
            "etcdBinary": str(bin_dir / "etcd"),
            "kubeApiserverBinary": str(bin_dir / "kube-apiserver"),
            "kubeControllerManagerBinary": str(bin_dir / "kube-controller-manager"),
            "kubeSchedulerBinary": str(bin_dir / "kube-scheduler"),
            "kwokControllerBinary": str(bin_dir / "kwok"),
            "kubeAuthorization": True,
            "quietPull": True,
            **(ports or {}),
        },
        # Room for thousands of Services (the default /24 holds 253), as real clusters have.
        "componentsPatches": [
            {
                "name": "kube-apiserver",
                "extraArgs": [{"key": "service-cluster-ip-range", "value": SERVICE_CIDR}],
            }
        ],
    }


def _kwokctl(*args: str, capture: bool = False, cluster: str = "") -> str:
    # kwokctl adds every cluster it creates to $KUBECONFIG (or ~/.kube/config) and switches the
    # current context; give it a scratch file so no user or fleet kubeconfig is ever rewritten,
    # one per cluster so that clusters started side by side do not write the same file.
    stem = "-".join(filter(None, ("llmfleet-kwokctl", str(os.getuid()), cluster)))
    scratch = Path(tempfile.gettempdir()) / f"{stem}.kubeconfig"
    result = subprocess.run(
        [KWOKCTL, *args],
        stdout=subprocess.PIPE if capture else None,
        text=True,
        check=False,
        env={**os.environ, "KUBECONFIG": str(scratch)},
    )
    if result.returncode != 0:
        raise RuntimeError(f"`kwokctl {' '.join(args)}` failed with exit code {result.returncode}")
    return result.stdout or ""


def existing_clusters() -> set[str]:
    return set(_kwokctl("get", "clusters", capture=True).split())


def kubeconfig(cluster: ClusterSpec) -> str:
    """A self-contained kubeconfig (certificates embedded) for the cluster's admin."""
    return _kwokctl("get", "kubeconfig", "--name", cluster.name, capture=True, cluster=cluster.name)


def create(
    cluster: ClusterSpec, bin_dir: Path, kube_version: str, ports: dict[str, int] | None = None
) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
        stages = [s for s in yaml.safe_load_all(STAGES_FILE.read_text()) if s]
        configuration = kwokctl_configuration(bin_dir, kube_version, ports)
        yaml.safe_dump_all([configuration, *stages], config_file)
    try:
        _kwokctl(
            "create", "cluster", "--name", cluster.name, "--runtime", "binary",
            "--config", config_file.name, "--wait", START_TIMEOUT, cluster=cluster.name,
        )  # fmt: skip
    finally:
        Path(config_file.name).unlink()


def start(cluster: ClusterSpec) -> None:
    """Starts a stopped cluster and returns once its controllers work: kwokctl waits for the
    API server only, and the new controller manager, scheduler and kwok controller wait out
    their predecessors' leases (meanwhile a namespace gets no ServiceAccount, a pod no node,
    and a scheduled pod never runs)."""
    for attempt in range(START_ATTEMPTS):
        _keep_logs(cluster)
        since = datetime.now(UTC)
        _kwokctl(
            "start", "cluster", "--name", cluster.name, "--wait", START_TIMEOUT,
            cluster=cluster.name,
        )  # fmt: skip
        problem = _wait_leading(cluster, since)
        if not problem:
            return
        if attempt + 1 < START_ATTEMPTS:
            stop(cluster)
    raise RuntimeError(f"{cluster.name} started, but {problem}")


def _wait_leading(cluster: ClusterSpec, since: datetime) -> str:
    """Waits until every component runs and each leader lease and node lease was renewed
    after `since`; what is still wrong after LEADING_TIMEOUT, or "" once it all works."""
    api = _admin_client(cluster)
    coordination, core = client.CoordinationV1Api(api), client.CoreV1Api(api)
    deadline = time.monotonic() + LEADING_TIMEOUT
    problem = ""
    try:
        while time.monotonic() < deadline:
            exited = [
                name for name, up in components.running_by_component(cluster).items() if not up
            ]
            if exited:
                return f"these exited: {', '.join(exited)}"
            try:
                leaders = _renewed_since(coordination, "kube-system", since)
                waiting = sorted(set(LEADER_LEASES) - leaders)
                nodes = {node.metadata.name for node in core.list_node(_request_timeout=5).items}
                held = _renewed_since(coordination, NODE_LEASES, since)
                waiting += [f"node {name}" for name in sorted(nodes - held)]
                problem = f"not yet taken over: {', '.join(waiting)}" if waiting else ""
            except Exception as error:  # noqa: BLE001 - the API server may still be warming up
                problem = f"its leases cannot be read ({str(error).splitlines()[0][:200]})"
            if not problem:
                return ""
            time.sleep(1)
    finally:
        api.close()
    return problem


def _renewed_since(
    coordination: client.CoordinationV1Api, namespace: str, since: datetime
) -> set[str]:
    """The leases of a namespace that their holder renewed after `since`."""
    leases = coordination.list_namespaced_lease(namespace, _request_timeout=5).items
    return {
        lease.metadata.name
        for lease in leases
        if lease.spec.renew_time is not None and lease.spec.renew_time > since
    }


def _keep_logs(cluster: ClusterSpec) -> None:
    """kwokctl starts each component on an empty log: what the cluster logged before a restart
    goes to the end of `<component>.history.log` beside it, for reading a failure afterwards."""
    for log in (kwok_clusters_dir() / cluster.name / "logs").glob("*.log"):
        if log.name.endswith(".history.log"):
            continue
        with log.with_name(f"{log.stem}.history.log").open("ab") as history:
            history.write(log.read_bytes())


def stop(cluster: ClusterSpec) -> None:
    """Stops every process of the cluster and waits for them to end (kwokctl only signals
    them; one still shutting down would hold its port against its successor); its state stays
    for `start`.

    The kwok controller goes first and its node leases with it: the next one has a new
    identity and would run no pod until they expired (nodeLeaseDurationSeconds, 200 s)."""
    running = components.running_by_component(cluster)
    if running.get("kwok-controller") and running.get("kube-apiserver"):
        components.stop(cluster, "kwok-controller")
        _delete_node_leases(cluster)
    _kwokctl("stop", "cluster", "--name", cluster.name, cluster=cluster.name)
    deadline = time.monotonic() + STOP_TIMEOUT
    while still := [n for n, up in components.running_by_component(cluster).items() if up]:
        if time.monotonic() > deadline:
            raise RuntimeError(f"{cluster.name}: still running after stop: {', '.join(still)}")
        time.sleep(0.2)


def _admin_client(cluster: ClusterSpec) -> client.ApiClient:
    return kubeconfig_loader.new_client_from_config_dict(yaml.safe_load(kubeconfig(cluster)))


def _delete_node_leases(cluster: ClusterSpec) -> None:
    api = _admin_client(cluster)
    try:
        coordination = client.CoordinationV1Api(api)
        for lease in coordination.list_namespaced_lease(NODE_LEASES, _request_timeout=10).items:
            coordination.delete_namespaced_lease(
                lease.metadata.name, NODE_LEASES, _request_timeout=10
            )
    except Exception as error:  # noqa: BLE001 - best effort: `start` waits for them to expire
        sys.stderr.write(f"{cluster.name}: its node leases are left to expire ({error})\n")
    finally:
        api.close()


def delete(cluster: ClusterSpec) -> None:
    _kwokctl("delete", "cluster", "--name", cluster.name, cluster=cluster.name)
