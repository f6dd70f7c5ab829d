"""The Helm chart on the local fleet: helm from the binary cache, the release the tests install,
and a kubeconfig holding the chart ServiceAccount's token (so the operator runs with exactly
the chart's rights)."""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client

from localfleet import topology
from localfleet.paths import CLUSTER_DIR, REPO_ROOT, bin_dir

CHART = REPO_ROOT / "charts" / "llmfleet"
RELEASE = "llmfleet"
NAMESPACE = topology.SYSTEM_NAMESPACE
SERVICE_ACCOUNT = "llmfleet"  # the chart's fullname for the release `llmfleet`
TENANT_SECRETS_ROLE = f"{RELEASE}-tenant-secrets"
TOKEN_SECONDS = 6 * 3600

# What the tests install: the hub is a cloud cluster, members are discovered by label (tests
# register extra ones), nothing is probed off the machine, resyncs are fast.
TEST_VALUES: dict[str, Any] = {
    "clusterLocation": topology.HUB.location,
    "discoverMembers": True,
    "egressCIDRs": [topology.HUB.egress_cidr],
    "providerProbes": False,
    "resyncSeconds": 3,
    "verbose": True,
}


def helm(*args: str, kubeconfig: Path | None = None, stdin: str | None = None) -> str:
    """Runs the cached helm; its own state stays under .cluster/helm, not in ~/.config."""
    state = CLUSTER_DIR / "helm"
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(state / "config"),
        "HELM_CACHE_HOME": str(state / "cache"),
        "HELM_DATA_HOME": str(state / "data"),
    }
    if kubeconfig is not None:
        env["KUBECONFIG"] = str(kubeconfig)
    result = subprocess.run(
        [str(bin_dir() / "helm"), *args],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    if result.returncode != 0:
        raise RuntimeError(f"`helm {' '.join(args)}` failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def values_file(values: dict[str, Any]) -> Path:
    with tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False) as out:
        json.dump(values, out)
    return Path(out.name)


def template(
    values: dict[str, Any], namespace: str = NAMESPACE, release: str = RELEASE
) -> list[dict[str, Any]]:
    path = values_file(values)
    try:
        text = helm("template", release, str(CHART), "--namespace", namespace, "-f", str(path))
    finally:
        path.unlink()
    return [doc for doc in yaml.safe_load_all(text) if doc]


def install(kubeconfig: Path, values: dict[str, Any]) -> str:
    """`helm upgrade --install` of the chart into the hub (CRDs already there are kept)."""
    path = values_file(values)
    try:
        return helm(
            "upgrade", "--install", RELEASE, str(CHART), "--namespace", NAMESPACE,
            "-f", str(path), "--wait", "--timeout", "120s", kubeconfig=kubeconfig,
        )  # fmt: skip
    finally:
        path.unlink()


def service_account_kubeconfig(
    api: client.ApiClient, admin_kubeconfig: Path, path: Path, name: str = SERVICE_ACCOUNT
) -> Path:
    """The admin kubeconfig's cluster with a TokenRequest token of the chart's ServiceAccount."""
    request = client.CoreV1Api(api).create_namespaced_service_account_token(
        name, NAMESPACE, {"spec": {"expirationSeconds": TOKEN_SECONDS}}
    )
    config = yaml.safe_load(admin_kubeconfig.read_text())
    for user in config["users"]:
        user["user"] = {"token": request.status.token}
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path
