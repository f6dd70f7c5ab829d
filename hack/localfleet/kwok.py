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
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path

import yaml

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
    _keep_logs(cluster)
    _kwokctl(
        "start", "cluster", "--name", cluster.name, "--wait", START_TIMEOUT, cluster=cluster.name
    )


def _keep_logs(cluster: ClusterSpec) -> None:
    """kwokctl starts each component on an empty log: what the cluster logged before a restart
    goes to the end of `<component>.history.log` beside it, for reading a failure afterwards."""
    for log in (kwok_clusters_dir() / cluster.name / "logs").glob("*.log"):
        if log.name.endswith(".history.log"):
            continue
        with log.with_name(f"{log.stem}.history.log").open("ab") as history:
            history.write(log.read_bytes())


def stop(cluster: ClusterSpec) -> None:
    """Stops every process of the cluster; its state stays for `start`."""
    _kwokctl("stop", "cluster", "--name", cluster.name, cluster=cluster.name)


def delete(cluster: ClusterSpec) -> None:
    _kwokctl("delete", "cluster", "--name", cluster.name, cluster=cluster.name)
