"""The Helm chart against the real hub: lint, values schema, the rendered objects in a server-side
dry run (the operator pod admitted under Pod Security `restricted`), the installed release,
and the rights its ServiceAccount has, snapshotted so that any widening fails.

The other integration modules run the operator with this ServiceAccount's token, so every
scenario there passes under exactly these rights."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, dynamic
from kubernetes.client.rest import ApiException

from llmfleet import labels
from localfleet import chart, seed, topology
from localfleet.fleet import api_client
from localfleet.paths import REPO_ROOT
from tests.integration import resources
from tests.integration.conftest import Fleet
from tests.integration.polling import wait_until

SNAPSHOT = Path(__file__).parent / "snapshots" / "operator-rbac.txt"
UPDATE = os.environ.get("LLMFLEET_UPDATE_SNAPSHOTS") == "1"
BY_NAME = {
    "members": [{"existingSecret": "cluster-llmfleet-onprem"}],
    "watchNamespaces": ["team-a"],
}
RBAC_KINDS = ("ClusterRole", "Role")


MONITORED = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}


@pytest.mark.parametrize(
    "values",
    [{}, chart.TEST_VALUES, BY_NAME, MONITORED],
    ids=["defaults", "tests", "members-by-name", "monitoring"],
)
def test_chart_lints(values: dict[str, Any]) -> None:
    path = chart.values_file(values)
    try:
        output = chart.helm("lint", str(chart.CHART), "--strict", "-f", str(path))
    finally:
        path.unlink()
    assert "0 chart(s) failed" in output


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"clusterLocation": "moon"}, "/clusterLocation"),
        ({"replicas": 2}, "additional properties 'replicas' not allowed"),
        ({"members": [{"name": "hci", "location": "onprem"}]}, "/members/0"),
        ({"egressCIDRs": ["10.0.0.0"]}, "/egressCIDRs/0"),
        ({"logFormat": "xml"}, "/logFormat"),
    ],
)
def test_wrong_values_fail_at_install_with_the_field(values: dict[str, Any], expected: str) -> None:
    with pytest.raises(RuntimeError, match=expected):
        chart.template(values)


def test_chart_version_follows_the_package() -> None:
    chart_yaml = (chart.CHART / "Chart.yaml").read_text()
    pyproject = (chart.CHART.parent.parent / "pyproject.toml").read_text()
    version = next(
        line.split('"')[1] for line in pyproject.splitlines() if line.startswith("version")
    )
    assert f"version: {version}\n" in chart_yaml
    assert f'appVersion: "{version}"' in chart_yaml


def rules_of(objects: list[dict[str, Any]]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (o["kind"], o["metadata"]["name"], r)
        for o in objects
        if o["kind"] in RBAC_KINDS
        for r in o.get("rules") or []
    ]


@pytest.mark.parametrize(
    "values", [chart.TEST_VALUES, BY_NAME], ids=["discovery", "members-by-name"]
)
def test_rbac_has_no_wildcard_and_no_cluster_wide_secrets(values: dict[str, Any]) -> None:
    objects = chart.template(values)
    for kind, name, rule in rules_of(objects):
        for key in ("apiGroups", "resources", "verbs", "resourceNames"):
            assert "*" not in rule.get(key, []), f"{kind}/{name} has a wildcard in {key}"
        if "secrets" in rule["resources"] and kind == "ClusterRole":
            assert name == chart.TENANT_SECRETS_ROLE
    cluster_bindings = [o for o in objects if o["kind"] == "ClusterRoleBinding"]
    assert {b["roleRef"]["name"] for b in cluster_bindings} == {chart.RELEASE}
    member_rules = [
        r for k, n, r in rules_of(objects) if k == "Role" and "secrets" in r["resources"]
    ]
    if values is BY_NAME:  # named members: read one by one, never listed
        assert member_rules == [
            {
                "apiGroups": [""],
                "resources": ["secrets"],
                "resourceNames": ["cluster-llmfleet-onprem"],
                "verbs": ["get"],
            }
        ]
        tenant_bindings = [
            o
            for o in objects
            if o["kind"] == "RoleBinding" and o["metadata"]["name"] == chart.TENANT_SECRETS_ROLE
        ]
        assert [b["metadata"]["namespace"] for b in tenant_bindings] == ["team-a"]
    else:
        assert member_rules[0]["verbs"] == ["get", "list", "watch"]


def test_rendered_chart_passes_a_server_side_dry_run_and_its_pod_is_restricted(
    fleet: Fleet, crds: list[str], restricted_namespace: str
) -> None:
    # Another release name: its cluster-wide objects must not collide with the installed ones.
    objects = chart.template(
        chart.TEST_VALUES, namespace=restricted_namespace, release="llmfleet-dry-run"
    )
    resources = dynamic.DynamicClient(fleet.cloud).resources
    for obj in objects:
        api = resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        namespace = obj["metadata"].get("namespace") if api.namespaced else None
        api.server_side_apply(
            body=obj, namespace=namespace, field_manager="chart-test", dry_run="All"
        )
    deployment = next(o for o in objects if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    # Pod Security admission judges pods, not Deployments: the operator pod itself must pass.
    # (Its ServiceAccount must exist for that: the dry run above stored nothing.)
    account = next(o for o in objects if o["kind"] == "ServiceAccount")
    client.CoreV1Api(fleet.cloud).create_namespaced_service_account(restricted_namespace, account)
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "operator-admission", "labels": template["metadata"]["labels"]},
        "spec": template["spec"],
    }
    client.CoreV1Api(fleet.cloud).create_namespaced_pod(restricted_namespace, pod, dry_run="All")


def prometheus_operator_crds(into: Path) -> Path:
    """PrometheusRule's and ServiceMonitor's CRDs from prometheus-operator's Go module."""
    found = subprocess.run(
        [str(REPO_ROOT / "hack" / "install-prometheus.sh"), "--print-operator-crds"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if found.returncode != 0:
        pytest.fail(f"prometheus-operator's CRDs: {found.stderr.strip()}", pytrace=False)
    into.mkdir()
    for kind in ("prometheusrules", "servicemonitors"):
        name = f"monitoring.coreos.com_{kind}.yaml"
        shutil.copy(Path(found.stdout.strip()) / name, into / name)
    return into


def test_monitoring_objects_pass_a_dry_run_against_prometheus_operators_crds(
    fleet: Fleet, namespace: str, tmp_path: Path
) -> None:
    installed = seed.install_crds(fleet.cloud, prometheus_operator_crds(tmp_path / "crds"))
    assert installed == [
        "prometheusrules.monitoring.coreos.com",
        "servicemonitors.monitoring.coreos.com",
    ]
    objects = chart.template(chart.TEST_VALUES | MONITORED, namespace=namespace)
    monitoring = [o for o in objects if o["apiVersion"].startswith("monitoring.coreos.com/")]
    assert sorted(o["kind"] for o in monitoring) == ["PrometheusRule", "ServiceMonitor"]
    dynamic_resources = dynamic.DynamicClient(fleet.cloud).resources
    for obj in monitoring:
        api = dynamic_resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
        api.server_side_apply(
            body=obj, namespace=namespace, field_manager="chart-test", dry_run="All"
        )
    # A schema that checks something: a rule with a malformed duration is refused.
    rule = next(o for o in monitoring if o["kind"] == "PrometheusRule")
    rule["spec"]["groups"][0]["rules"][0]["for"] = "fifteen minutes"
    api = dynamic_resources.get(api_version=rule["apiVersion"], kind="PrometheusRule")
    with pytest.raises(ApiException) as refused:
        api.server_side_apply(
            body=rule, namespace=namespace, field_manager="chart-test", dry_run="All"
        )
    assert refused.value.status == 422
    assert "spec.groups[0].rules[0].for" in str(refused.value.body)


def test_installed_release_runs_the_operator_deployment(fleet: Fleet, chart_release: str) -> None:
    apps = client.AppsV1Api(fleet.cloud)
    deployment = apps.read_namespaced_deployment(chart.RELEASE, chart.NAMESPACE)
    assert deployment.spec.template.spec.service_account_name == chart.SERVICE_ACCOUNT
    container = deployment.spec.template.spec.containers[0]
    assert container.security_context.read_only_root_filesystem is True
    env = {e.name: e.value for e in container.env}
    assert env["LLMFLEET_CLUSTER_LOCATION"] == "cloud"
    assert env["LLMFLEET_EGRESS_CIDRS"] == topology.HUB.egress_cidr
    assert "LLMFLEET_MEMBER_SECRETS" not in env  # the test release discovers members
    assert deployment.status.ready_replicas == 1
    policy = client.NetworkingV1Api(fleet.cloud).read_namespaced_network_policy(
        chart.RELEASE, chart.NAMESPACE
    )
    assert policy.spec.policy_types == ["Ingress", "Egress"]


def rule_lines(api: client.ApiClient, namespace: str) -> set[str]:
    """What `kubectl auth can-i --list -n NAMESPACE` shows for the token's subject."""
    review = client.AuthorizationV1Api(api).create_self_subject_rules_review(
        {"spec": {"namespace": namespace}}
    )
    lines = set()
    for rule in review.status.resource_rules:
        for group in rule.api_groups or [""]:
            for resource in rule.resources or []:
                names = ",".join(sorted(rule.resource_names or [])) or "-"
                lines.add(
                    f"{resource}{'.' + group if group else ''} names={names} verbs={','.join(sorted(rule.verbs))}"
                )
    return lines


def test_rbac_snapshot_of_the_chart_service_account(
    fleet: Fleet, chart_release: str, namespace: str, tmp_path: Path
) -> None:
    """The rights the chart grants (minus what every ServiceAccount has) in the members'
    namespace, an onboarded workload namespace, and a namespace nobody onboarded."""
    core = client.CoreV1Api(fleet.cloud)
    baseline_name = "rbac-baseline"
    if not core.list_namespaced_service_account(
        chart.NAMESPACE, field_selector=f"metadata.name={baseline_name}"
    ).items:
        core.create_namespaced_service_account(
            chart.NAMESPACE, {"metadata": {"name": baseline_name}}
        )
    operator_config = chart.service_account_kubeconfig(
        fleet.cloud, fleet.kubeconfigs["cloud"], tmp_path / "op"
    )
    baseline_config = chart.service_account_kubeconfig(
        fleet.cloud, fleet.kubeconfigs["cloud"], tmp_path / "base", baseline_name
    )
    sections = []
    with api_client(operator_config) as operator_api, api_client(baseline_config) as baseline_api:
        for title, ns in (
            ("members namespace", chart.NAMESPACE),
            ("onboarded workload namespace", namespace),
            ("other namespace", "default"),
        ):
            granted = sorted(rule_lines(operator_api, ns) - rule_lines(baseline_api, ns))
            sections.append(f"# {title}\n" + "\n".join(granted))
            for line in granted:
                assert "*" not in line, line
                if line.startswith("secrets "):
                    assert ns != "default", (
                        f"Secrets readable in a namespace nobody onboarded: {line}"
                    )
    text = "\n\n".join(sections) + "\n"
    if UPDATE:
        SNAPSHOT.parent.mkdir(exist_ok=True)
        SNAPSHOT.write_text(text)
    assert text == SNAPSHOT.read_text(), (
        "the chart ServiceAccount's rights changed; review the difference and, if intended, "
        "run `LLMFLEET_UPDATE_SNAPSHOTS=1 make test-integration` to record them"
    )
    assert labels.GROUP in text  # the snapshot covers the operator's own kinds


@pytest.mark.usefixtures("operator")
def test_a_namespace_not_onboarded_says_how_to_grant_secret_access(
    fleet: Fleet, namespace: str
) -> None:
    """Without the tenant RoleBinding the operator may not read the namespace's Secrets: the
    resource says so, and how to fix it, instead of retrying silently."""
    client.RbacAuthorizationV1Api(fleet.cloud).delete_namespaced_role_binding(
        chart.TENANT_SECRETS_ROLE, namespace
    )
    core = client.CoreV1Api(fleet.cloud)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "hf-token"}, "stringData": {"token": "t"}}
    )
    body = {
        "apiVersion": "llmfleet.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": "locked-out"},
        "spec": {
            "model": {
                "name": "meta-llama/Llama-3.1-8B-Instruct",
                "credentialsSecretRef": {"name": "hf-token", "key": "token"},
            },
            "placement": {"location": "cloud"},
        },
    }
    client.CustomObjectsApi(fleet.cloud).create_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments", body
    )

    def forbidden() -> dict[str, Any] | None:
        obj = resources.get(fleet.cloud, namespace, "llmdeployments", "locked-out")
        return obj if resources.condition(obj, "Ready").get("reason") == "Forbidden" else None

    obj = wait_until(forbidden, what="Ready=False with reason Forbidden", timeout=60)
    message = resources.condition(obj, "Ready")["message"]
    assert "secrets" in message
    assert "tenant-secrets" in message
    assert resources.condition(obj, "Degraded")["status"] == "True"
    events = core.list_namespaced_event(
        namespace, field_selector="involvedObject.name=locked-out"
    ).items
    assert "Forbidden" in {e.reason for e in events}
    # Nothing was applied for it.
    assert not client.AppsV1Api(fleet.cloud).list_namespaced_deployment(namespace).items
