"""Argo CD for real (hack/localfleet/argocd.py: its repo-server, application-controller and
applicationset-controller built from Go modules, redis, all on 127.0.0.1) against the hub,
with llmfleet's Lua health checks loaded into argocd-cm. An Application syncs llmfleet
resources from a `file://` git repository; Argo CD judges their health with those checks
(Progressing, then Healthy; Degraded for a model no cluster can fit); a commit is synced and
reconciled by the operator. Argo CD runs in the operator's namespace, so one Argo CD cluster
Secret registers the on-prem member for both: the ApplicationSet of config/argocd/ generates
from it, and llmfleet places on it as it is."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client

from llmfleet import labels
from llmfleet.api import GROUP, VERSION
from localfleet import argocd as argo
from localfleet import topology
from localfleet.argocd import GitRepo, LocalArgoCD
from localfleet.paths import REPO_ROOT
from tests.integration import resources
from tests.integration.conftest import Fleet, Operator
from tests.integration.polling import wait_until
from tests.integration.resources import get, ready
from tests.integration.test_llmdeployment import scrape

APPLICATIONSET = REPO_ROOT / "config" / "argocd" / "applicationset.yaml"


@pytest.fixture(scope="module")
def argocd(
    fleet: Fleet, operator: Operator, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalArgoCD]:
    if not argo.is_built():
        pytest.fail("Argo CD is not built or redis-server is missing: run `make argocd`")
    running = LocalArgoCD(
        fleet.kubeconfigs["cloud"],
        tmp_path_factory.mktemp("argocd"),
        namespace=topology.SYSTEM_NAMESPACE,
        app_resync=5,
    )
    running.start()
    try:
        yield running
        running.delete_all()  # while the controllers run: they own the generated Applications
    finally:
        running.stop()


def llm(name: str, location: str, gpus: int, replicas: int = 1) -> dict[str, Any]:
    return resources.llm_deployment(name, location, gpu={"count": gpus}, replicas=replicas)


def application(name: str, repo: GitRepo, namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Application",
        "metadata": {"name": name},
        "spec": {
            "project": "default",
            "source": {"repoURL": repo.url, "targetRevision": repo.branch, "path": "."},
            "destination": {"server": argo.IN_CLUSTER, "namespace": namespace},
            "syncPolicy": {"automated": {"prune": True, "selfHeal": True}},
        },
    }


@pytest.mark.usefixtures("idle_gpus")
def test_an_application_syncs_llmfleet_resources_and_argo_cd_judges_their_health(
    fleet: Fleet, namespace: str, argocd: LocalArgoCD, operator: Operator, tmp_path: Path
) -> None:
    repo = GitRepo(tmp_path / "workloads")
    first = repo.commit(
        {"models.yaml": [llm("chat-model", "cloud", 1), llm("too-big", "onprem", 5)]},
        "two models",
    )
    app_name = f"app-{namespace}"[:53]
    argocd.apply(application(app_name, repo, namespace))

    def health(app: dict[str, Any], name: str) -> str | None:
        found = argo.resource_health(app, "LLMDeployment", name)
        return None if found is None else found[0]

    def settled(app: dict[str, Any]) -> bool:
        return (
            argo.sync_status(app) == "Synced"
            and (app["status"]["sync"].get("revision") == first)
            and health(app, "chat-model") == "Healthy"
            and health(app, "too-big") == "Degraded"
        )

    app = argocd.wait_for_application(app_name, settled, timeout=120)
    assert argo.health_status(app) == "Degraded"  # the worst of its resources
    _, message = argo.resource_health(app, "LLMDeployment", "too-big") or ("", "")
    assert message.startswith("InsufficientGPU: ")  # the Lua check's message: reason, message
    assert get(fleet.cloud, namespace, "llmdeployments", "chat-model")["spec"]["replicas"] == 1

    # A commit while the operator is down: synced by Argo CD, Progressing until the operator
    # has observed the new generation, then reconciled and Healthy again.
    operator.stop()
    try:
        second = repo.commit(
            {"models.yaml": [llm("chat-model", "cloud", 1, 2), llm("too-big", "onprem", 5)]},
            "two replicas",
        )
        argocd.refresh(app_name)

        def waiting(app: dict[str, Any]) -> bool:
            found = argo.resource_health(app, "LLMDeployment", "chat-model")
            return (
                argo.sync_status(app) == "Synced"
                and app["status"]["sync"].get("revision") == second
                and found is not None
                and found[0] == "Progressing"
            )

        app = argocd.wait_for_application(app_name, waiting, timeout=60)
        _, message = argo.resource_health(app, "LLMDeployment", "chat-model") or ("", "")
        assert "observe generation 2" in message
    finally:
        operator.start()

    def scaled(app: dict[str, Any]) -> bool:
        obj = get(fleet.cloud, namespace, "llmdeployments", "chat-model")
        placed = sum(p.get("replicas", 0) for p in obj["status"].get("placements", []))
        return (
            argo.sync_status(app) == "Synced"
            and health(app, "chat-model") == "Healthy"
            and obj["spec"]["replicas"] == 2
            and placed == 2
        )

    argocd.wait_for_application(app_name, scaled, timeout=120)
    client.CustomObjectsApi(argocd.api).delete_namespaced_custom_object(
        "argoproj.io", "v1alpha1", topology.SYSTEM_NAMESPACE, "applications", app_name
    )


def test_one_argo_cd_cluster_secret_registers_a_member_for_argo_cd_and_llmfleet(
    fleet: Fleet, namespace: str, argocd: LocalArgoCD, operator: Operator, tmp_path: Path
) -> None:
    # The member as Argo CD registers it, with the labels llmfleet and the ApplicationSet read.
    secret_name = f"argocd-{topology.ONPREM.name}"
    argocd.register_cluster(
        secret_name,
        fleet.kubeconfigs["onprem"],
        labels={labels.LOCATION: "onprem", "gitops": "argocd"},
    )
    try:
        # The ApplicationSet of config/argocd/, generating from the cluster Secrets.
        # Two changes keep it on this machine and out of the member: the samples come from a
        # local copy of the repository, and nothing is synced automatically. Its generator
        # selects the Secret by the label this test gives (hub clusters carry llmfleet.io/hub).
        samples = GitRepo(tmp_path / "llmfleet")
        shutil.copytree(REPO_ROOT / "config" / "samples", samples.path / "config" / "samples")
        samples.commit({}, "samples")
        appset = yaml.safe_load(APPLICATIONSET.read_text())
        appset["metadata"]["name"] = f"workloads-{namespace}"[:63]
        appset["spec"]["generators"][0]["clusters"]["selector"] = {
            "matchLabels": {"gitops": "argocd"}
        }
        template = appset["spec"]["template"]["spec"]
        template["source"]["repoURL"] = samples.url
        del template["syncPolicy"]["automated"]
        argocd.apply(appset)
        generated = f"llmfleet-workloads-{secret_name}"

        app = wait_until(
            lambda: argocd.application(generated), what=f"Application {generated}", timeout=60
        )
        assert app["spec"]["destination"]["server"] == _server(fleet.kubeconfigs["onprem"])
        assert app["spec"]["source"]["path"] == "config/samples"
        assert app["spec"]["source"]["repoURL"] == samples.url
        client.CustomObjectsApi(argocd.api).delete_namespaced_custom_object(
            "argoproj.io", "v1alpha1", topology.SYSTEM_NAMESPACE, "applicationsets",
            appset["metadata"]["name"],
        )  # fmt: skip

        # llmfleet reads the same Secret as it is: a model selecting it lands there.
        body = llm("via-argocd", "onprem", 1)
        body["spec"]["placement"]["clusterSelector"] = {"matchLabels": {"gitops": "argocd"}}
        client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
            GROUP, VERSION, namespace, "llmdeployments", body
        )

        def placed() -> dict[str, Any] | None:
            obj = get(fleet.cloud, namespace, "llmdeployments", "via-argocd")
            return obj if ready(obj) else None

        obj = wait_until(placed, what="the model on the Argo CD-registered member", timeout=90)
        assert obj["status"]["placements"][0]["cluster"] == secret_name
        assert (
            client.AppsV1Api(fleet.onprem).read_namespaced_deployment("via-argocd", namespace)
            is not None
        )
        reachable = f'llmfleet_cluster_reachable{{cluster="{secret_name}",location="onprem"}}'
        assert scrape(operator).get(reachable) == 1
    finally:
        client.CoreV1Api(fleet.cloud).delete_namespaced_secret(
            secret_name, topology.SYSTEM_NAMESPACE
        )
    # Deregistered: its series go, so no alert on it outlives the registration.
    wait_until(
        lambda: reachable not in scrape(operator),
        what=f"the operator to drop the series of {secret_name}",
        timeout=60,
    )


def _server(kubeconfig: Path) -> str:
    return str(yaml.safe_load(kubeconfig.read_text())["clusters"][0]["cluster"]["server"])
