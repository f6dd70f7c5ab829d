"""Where the local fleet keeps binaries, cluster state and kubeconfigs."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

HACK_DIR = Path(__file__).resolve().parent.parent
REPO_ROOT = HACK_DIR.parent
CLUSTER_DIR = Path(os.environ.get("LLMFLEET_CLUSTER_DIR", REPO_ROOT / ".cluster"))


def kubeconfig_path(short_name: str) -> Path:
    return CLUSTER_DIR / f"{short_name}.kubeconfig"


def bin_dir() -> Path:
    """The cache directory of the pinned binaries (which may not be built yet)."""
    from localfleet.processes import cache_dir  # noqa: PLC0415 - processes imports paths

    return cache_dir("build-binaries.sh")


def kwok_clusters_dir() -> Path:
    """Where kwokctl keeps each cluster's configuration, pids, logs and etcd data."""
    workdir = os.environ.get("KWOK_WORKDIR")
    if workdir:
        return Path(workdir) / "clusters"
    binaries = bin_dir()
    return binaries.parent.parent / "kwok" / binaries.name / "clusters"


def ensure_binaries() -> Path:
    """Builds the control-plane binaries if the cache is cold; returns their directory.

    Progress goes to the terminal (stderr); the script prints the directory on stdout.
    """
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-binaries.sh")],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(
            "building the local control plane failed (hack/build-binaries.sh, output above); "
            "it needs Go >= 1.24 and the Go module proxy"
        )
    return Path(result.stdout.strip().splitlines()[-1])
