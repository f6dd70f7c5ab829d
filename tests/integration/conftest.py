"""Fixtures for tests against the real local clusters (or any clusters given by kubeconfig)."""

from __future__ import annotations

import re
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.rest import ApiException

from llmfleet import labels
from llmfleet.api import GROUP, VERSION
from localfleet import chart, processes, seed, topology
from localfleet import fleet as localfleet
from localfleet.loadbalancers import LoadBalancerSimulator
from localfleet.paths import REPO_ROOT
from localfleet.ports import free_port
from localfleet.prometheus import LocalPrometheus
from tests.integration.polling import wait_until

HERE = Path(__file__).parent


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test here is marked `integration`, so a plain `pytest` leaves them out; those
    that use no cluster (real Prometheus, promtool, tsc, llama-server on their own) are also
    marked `clusterless`: they run beside the suite that uses the clusters."""
    for item in items:
        if HERE in Path(str(item.path)).parents:
            item.add_marker(pytest.mark.integration)
            if "fleet" not in getattr(item, "fixturenames", ()):
                item.add_marker(pytest.mark.clusterless)


DEMO_NAMESPACE = "llmfleet-demo"
DEMO_RESTRICTED_NAMESPACE = "llmfleet-demo-restricted"
TEST_NAMESPACE_PREFIX = "t-"
# Seconds between the operator's reads of the load (15 by default): the tests' Prometheus
# scrapes every second.
AUTOSCALING_INTERVAL = 2
NOT_FOUND = 404


@dataclass
class Fleet:
    """The test clusters: kubeconfigs and API clients by short name (topology.FLEET)."""

    kubeconfigs: dict[str, Path]
    apis: dict[str, client.ApiClient]

    @property
    def cloud(self) -> client.ApiClient:
        """The hub, llmfleet-cloud."""
        return self.apis[topology.CLOUD.short_name]

    @property
    def onprem(self) -> client.ApiClient:
        """The first on-prem member, llmfleet-onprem (L40S)."""
        return self.apis[topology.ONPREM.short_name]

    @property
    def onprem2(self) -> client.ApiClient:
        """The second on-prem member, llmfleet-onprem-2 (A100)."""
        return self.apis[topology.ONPREM2.short_name]

    def clients(self) -> dict[str, client.ApiClient]:
        return dict(self.apis)

    def api_of(self, cluster: str) -> client.ApiClient:
        """The cluster a status names: "in-cluster" (the hub) or a member's name."""
        if cluster == "in-cluster":
            return self.cloud
        by_name = {c.name: self.apis[c.short_name] for c in topology.FLEET}
        return by_name[cluster]


def pinned(cluster: topology.ClusterSpec, **placement: Any) -> dict[str, Any]:
    """A placement that only `cluster` can take: its location, narrowed to it by the region
    label of its member Secret (tests that stop, cut or inspect one member pin to it)."""
    return {
        "location": cluster.location,
        "clusterSelector": topology.cluster_selector(cluster),
        **placement,
    }


def pin_onprem(manifest: Any, cluster: topology.ClusterSpec = topology.ONPREM) -> Any:
    """A copy of a manifest whose self-managed onprem placements and sites (an LLMDeployment's
    placement, a ChatEndpoint's sites, an MLPipeline's stages) only `cluster` can take, for
    tests that look for their children in that cluster."""
    if isinstance(manifest, list):
        return [pin_onprem(item, cluster) for item in manifest]
    if not isinstance(manifest, dict):
        return manifest
    pinned_copy = {key: pin_onprem(value, cluster) for key, value in manifest.items()}
    if (
        pinned_copy.get("location") == cluster.location
        and pinned_copy.get("management") != "managed"
        and "clusterSelector" not in pinned_copy
    ):
        pinned_copy["clusterSelector"] = topology.cluster_selector(cluster)
    return pinned_copy


def _refuse_unless_test_cluster(name: str, api: client.ApiClient) -> None:
    """Tests create and delete objects freely: never run them against a cluster that matters."""
    try:
        namespace = client.CoreV1Api(api).read_namespace(topology.SYSTEM_NAMESPACE)
    except ApiException as error:
        pytest.fail(
            f"cluster {name!r} has no namespace {topology.SYSTEM_NAMESPACE} ({error.status}); "
            "integration tests only run on clusters made by `make cluster-up` or `make kind-up`",
            pytrace=False,
        )
    if (namespace.metadata.labels or {}).get(labels.TEST_CLUSTER) != "true":
        pytest.fail(
            f"cluster {name!r} is not marked as a test cluster (namespace "
            f"{topology.SYSTEM_NAMESPACE} lacks label {labels.TEST_CLUSTER}=true); refusing to run",
            pytrace=False,
        )


def _clear_leftovers(api: client.ApiClient) -> None:
    """Tests size their GPU requests to the fleet's nodes: namespaces an interrupted run left
    behind, and what `make demo` left running, would hold GPUs they need. They go; the test
    operator finishes the hub's deletions (finalizers)."""
    core = client.CoreV1Api(api)
    leftovers = [
        ns.metadata.name
        for ns in core.list_namespace(label_selector=f"{labels.TEST_CLUSTER}=true").items
        if ns.metadata.name.startswith(TEST_NAMESPACE_PREFIX)
    ]
    for name in [*leftovers, DEMO_NAMESPACE, DEMO_RESTRICTED_NAMESPACE]:
        try:
            core.delete_namespace(name)
        except ApiException as error:
            if error.status != NOT_FOUND:
                raise


@pytest.fixture(scope="session")
def fleet() -> Iterator[Fleet]:
    try:
        kubeconfigs = localfleet.external_kubeconfigs() or localfleet.up()
    except Exception as error:  # noqa: BLE001 - any failure becomes one actionable message
        pytest.fail(
            f"could not get the test clusters: {error}\n"
            "  fix: run `make cluster-up` and read its output (it builds the control plane from "
            "Go modules on first use), or point "
            + ", ".join(f"LLMFLEET_{c.short_name.upper()}_KUBECONFIG" for c in topology.FLEET)
            + " at clusters made by `make kind-up`",
            pytrace=False,
        )
    apis = {name: localfleet.api_client(path) for name, path in kubeconfigs.items()}
    for name, api in apis.items():
        _refuse_unless_test_cluster(name, api)
        _clear_leftovers(api)
    yield Fleet(kubeconfigs=kubeconfigs, apis=apis)
    for api in apis.values():
        api.close()


@pytest.fixture
def namespace(fleet: Fleet, request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh namespace of the same name in every cluster, deleted after the test."""
    stem = re.sub(r"[^a-z0-9-]+", "-", request.node.name.lower()).strip("-")[:40].strip("-")
    name = f"{TEST_NAMESPACE_PREFIX}{stem}-{uuid.uuid4().hex[:6]}"
    body = {"metadata": {"name": name, "labels": {labels.TEST_CLUSTER: "true"}}}
    for api in fleet.clients().values():
        client.CoreV1Api(api).create_namespace(body)
    # Onboarding a workload namespace: the operator may read the Secrets its resources name.
    client.RbacAuthorizationV1Api(fleet.cloud).create_namespaced_role_binding(
        name,
        {
            "metadata": {"name": chart.TENANT_SECRETS_ROLE},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "ClusterRole",
                "name": chart.TENANT_SECRETS_ROLE,
            },
            "subjects": [
                {
                    "kind": "ServiceAccount",
                    "name": chart.SERVICE_ACCOUNT,
                    "namespace": chart.NAMESPACE,
                }
            ],
        },
    )
    yield name
    for api in fleet.clients().values():
        client.CoreV1Api(api).delete_namespace(name)


@pytest.fixture(scope="session")
def crds(fleet: Fleet) -> list[str]:
    """The generated CRDs, server-side applied to the hub."""
    return seed.install_crds(fleet.cloud, REPO_ROOT / "crds")


# The operator's log line at the end of each resync round.
RESYNC_ROUND = "Resync round over"


class Operator:
    """`llmfleet run` as its own process against the hub, as a user runs it."""

    def __init__(self, kubeconfig: Path, log_dir: Path, prometheus_url: str = "") -> None:
        self.kubeconfig = kubeconfig
        self.log_dir = log_dir
        self.prometheus_url = prometheus_url
        self.process: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.resync_seconds = 3

    @property
    def log(self) -> Path:
        return self.log_dir / f"operator-{self.starts}.log"

    def start(self) -> None:
        self.starts += 1
        command = [
            sys.executable, "-m", "llmfleet", "run", "--kubeconfig", str(self.kubeconfig),
            "--liveness-port", str(self.liveness_port), "--metrics-port", str(self.metrics_port),
            "--resync-seconds", str(self.resync_seconds), "--verbose", "--no-provider-probes",
            "--egress-cidr", topology.HUB.egress_cidr,
            "--autoscaling-interval", str(AUTOSCALING_INTERVAL),
        ]  # fmt: skip
        if self.prometheus_url:
            command += ["--prometheus-url", self.prometheus_url]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        wait_until(self._healthy, what=f"the operator to be live (log: {self.log})", timeout=60)

    def _healthy(self) -> bool:
        assert self.process is not None
        if self.process.poll() is not None:
            raise AssertionError(f"the operator exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=2
            ) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def stop(self) -> None:
        processes.stop(self.process)

    def restart(self) -> None:
        self.stop()
        self.start()

    def resync_rounds(self, rounds: int, what: str = "") -> None:
        """Waits for `rounds` more resync rounds over every resource to complete."""
        seen = self.log.read_text().count(RESYNC_ROUND)
        wait_until(
            lambda: self.log.read_text().count(RESYNC_ROUND) >= seen + rounds,
            what=what or f"{rounds} resync rounds",
        )

    def kill(self) -> None:
        """SIGKILL: no cleanup handlers, no graceful shutdown, as when a node dies."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture(scope="session")
def chart_release(fleet: Fleet, crds: list[str]) -> str:
    """The chart installed into the hub with Helm, as a user installs it."""
    return chart.install(fleet.kubeconfigs["cloud"], chart.TEST_VALUES)


@pytest.fixture(scope="session")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalPrometheus]:
    """A real Prometheus on 127.0.0.1, the one the operator reads the load of autoscaled
    models from; tests point its scrape targets at what they run."""
    running = LocalPrometheus(tmp_path_factory.mktemp("prometheus"))
    running.start([])
    yield running
    running.stop()


@pytest.fixture(scope="session")
def operator(
    fleet: Fleet,
    chart_release: str,
    prometheus: LocalPrometheus,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Operator]:
    """The operator with the chart ServiceAccount's token: every scenario runs with exactly
    the rights the chart grants, no more."""
    workdir = tmp_path_factory.mktemp("operator")
    kubeconfig = chart.service_account_kubeconfig(
        fleet.cloud, fleet.kubeconfigs["cloud"], workdir / "operator.kubeconfig"
    )
    running = Operator(kubeconfig, workdir, prometheus.url)
    running.start()
    yield running
    running.stop()


@pytest.fixture(scope="session")
def load_balancers(fleet: Fleet) -> Iterator[LoadBalancerSimulator]:
    """Addresses for LoadBalancer Services, which kwok's clusters have no controller for."""
    simulator = LoadBalancerSimulator(fleet.clients()).start()
    yield simulator
    simulator.stop()


@pytest.fixture
def restricted_namespace(fleet: Fleet, namespace: str) -> str:
    """A test namespace whose admission enforces Pod Security `restricted` in every cluster."""
    body = {"metadata": {"labels": {"pod-security.kubernetes.io/enforce": "restricted"}}}
    for api in fleet.clients().values():
        client.CoreV1Api(api).patch_namespace(namespace, body)
    return namespace


@pytest.fixture
def idle_gpus(fleet: Fleet) -> None:
    """These tests size their models to the fleet's GPUs: the pods of earlier tests (their
    namespaces are deleted as each ends) are gone first."""

    def busy() -> list[str]:
        holding = []
        ended_in: dict[str, set[str]] = {}
        for name, api in fleet.clients().items():
            core = client.CoreV1Api(api)
            ended = ended_in[name] = {
                ns.metadata.name
                for ns in core.list_namespace().items
                if ns.metadata.deletion_timestamp
                and ns.metadata.name.startswith(TEST_NAMESPACE_PREFIX)
            }
            for pod in core.list_pod_for_all_namespaces().items:
                if pod.status.phase in ("Succeeded", "Failed") or not any(
                    "nvidia.com/gpu" in (c.resources.requests or {}) for c in pod.spec.containers
                ):
                    continue
                holding.append(f"{name}: {pod.metadata.namespace}/{pod.metadata.name}")
                # A deleted test's pods would wait out their grace period (the simulated
                # kubelet honours it), or for a restarted cluster's namespace controller to
                # reach them: nothing runs in them, so they go at once.
                if pod.metadata.namespace in ended:
                    try:
                        core.delete_namespaced_pod(
                            pod.metadata.name, pod.metadata.namespace, grace_period_seconds=0
                        )
                    except ApiException as error:
                        if error.status != NOT_FOUND:
                            raise
        # Models of deleted tests still count in the operator's ledger until it has cleaned
        # them up: the next test's room is what is left once they are gone.
        for item in client.CustomObjectsApi(fleet.cloud).list_cluster_custom_object(
            GROUP, VERSION, "llmdeployments"
        )["items"]:
            meta = item["metadata"]
            if meta["namespace"] in ended_in[topology.HUB.short_name] or (
                meta.get("deletionTimestamp")
                and meta["namespace"].startswith(TEST_NAMESPACE_PREFIX)
            ):
                holding.append(f"being deleted: {meta['namespace']}/{meta['name']}")
        return holding

    try:
        wait_until(lambda: not busy(), what="no pod holding GPUs", timeout=180)
    except AssertionError as error:
        raise AssertionError(f"{error}; still holding GPUs: {busy()}") from error
