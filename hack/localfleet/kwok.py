"""Runs the fleet's clusters as real control planes on loopback with `kwokctl --runtime binary`."""

from __future__ import annotations

import hashlib
import os
import subprocess
import tempfile
from pathlib import Path

import yaml

from localfleet.paths import HACK_DIR
from localfleet.topology import ClusterSpec

KWOKCTL = str(HACK_DIR / "kwokctl.sh")
STAGES_FILE = Path(__file__).with_name("kwok-stages.yaml")
SERVICE_CIDR = "10.96.0.0/16"
# Clusters remember the simulation they were created with (a label on the system namespace),
# so a change to it recreates them instead of testing against the old one.
STAGES_STAMP = hashlib.sha256(STAGES_FILE.read_bytes() + SERVICE_CIDR.encode()).hexdigest()[:12]
# An apiserver on 2 busy cores can take a minute or two to become ready.
START_TIMEOUT = "5m"


def kwokctl_configuration(bin_dir: Path, kube_version: str) -> dict[str, object]:
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
        },
        # Room for thousands of Services (the default /24 holds 253), as real clusters have.
        "componentsPatches": [
            {
                "name": "kube-apiserver",
                "extraArgs": [{"key": "service-cluster-ip-range", "value": SERVICE_CIDR}],
            }
        ],
    }


def _kwokctl(*args: str, capture: bool = False) -> str:
    # kwokctl adds every cluster it creates to $KUBECONFIG (or ~/.kube/config) and switches the
    # current context; give it a scratch file so no user or fleet kubeconfig is ever rewritten.
    scratch = Path(tempfile.gettempdir()) / f"llmfleet-kwokctl-{os.getuid()}.kubeconfig"
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
    return _kwokctl("get", "kubeconfig", "--name", cluster.name, capture=True)


def create(cluster: ClusterSpec, bin_dir: Path, kube_version: str) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as config_file:
        stages = [s for s in yaml.safe_load_all(STAGES_FILE.read_text()) if s]
        yaml.safe_dump_all([kwokctl_configuration(bin_dir, kube_version), *stages], config_file)
    try:
        _kwokctl(
            "create", "cluster", "--name", cluster.name, "--runtime", "binary",
            "--config", config_file.name, "--wait", START_TIMEOUT,
        )  # fmt: skip
    finally:
        Path(config_file.name).unlink()


def start(cluster: ClusterSpec) -> None:
    _kwokctl("start", "cluster", "--name", cluster.name, "--wait", START_TIMEOUT)


def stop(cluster: ClusterSpec) -> None:
    """Stops every process of the cluster; its state stays for `start`."""
    _kwokctl("stop", "cluster", "--name", cluster.name)


def delete(cluster: ClusterSpec) -> None:
    _kwokctl("delete", "cluster", "--name", cluster.name)
