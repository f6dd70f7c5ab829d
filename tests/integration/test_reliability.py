"""Promises under interference: other writers, secrets, crashes, API outages, throttling."""

from __future__ import annotations

import base64
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from llmfleet import labels
from llmfleet.render.common import owner_label
from localfleet import chart, components, kwok, topology
from localfleet.fleet import api_client, raw_get
from tests.integration import resources
from tests.integration.conftest import Fleet, Operator, pinned
from tests.integration.polling import wait_until
from tests.integration.resources import condition, create_chat_endpoint, ready
from tests.integration.test_llmdeployment import (
    create,
    llmd,
    managed_llmd,
    patch_spec,
    scrape,
    wait_condition,
)

pytestmark = pytest.mark.usefixtures("operator")
INTRUDER = "intruder"


def test_fields_another_writer_changed_are_restored_and_its_own_fields_kept(
    fleet: Fleet, namespace: str, operator: Operator
) -> None:
    create(fleet, namespace, llmd("owned", "cloud"))
    wait_condition(fleet, namespace, "owned", "Ready", "True")
    apps, networking = client.AppsV1Api(fleet.cloud), client.NetworkingV1Api(fleet.cloud)
    selector = f"{labels.OWNER}={owner_label('LLMDeployment', namespace, 'owned')}"
    [policy] = [
        p
        for p in networking.list_namespaced_network_policy(namespace, label_selector=selector).items
        if p.spec.ingress
    ]
    rules = client.ApiClient().sanitize_for_serialization(policy.spec.ingress)
    conflicts_before = scrape(operator).get(
        'llmfleet_api_requests_total{cluster="in-cluster",code="409",verb="APPLY"}', 0
    )

    # kubectl scale, a label of someone else's, and a NetworkPolicy opened to everyone.
    apps.patch_namespaced_deployment_scale(
        "owned", namespace, {"spec": {"replicas": 3}}, field_manager=INTRUDER
    )
    apps.patch_namespaced_deployment(
        "owned", namespace, {"metadata": {"labels": {"team": "search"}}}, field_manager=INTRUDER
    )
    networking.patch_namespaced_network_policy(
        policy.metadata.name, namespace, {"spec": {"ingress": [{}]}}, field_manager=INTRUDER
    )

    def restored() -> bool:
        live = apps.read_namespaced_deployment("owned", namespace)
        opened = networking.read_namespaced_network_policy(policy.metadata.name, namespace)
        return live.spec.replicas == 1 and (
            client.ApiClient().sanitize_for_serialization(opened.spec.ingress) == rules
        )

    wait_until(restored, what="the operator to restore replicas and the policy's rules")
    assert apps.read_namespaced_deployment("owned", namespace).metadata.labels["team"] == "search"
    restorations = operator.log.read_text().count(f"of Deployment/owned in in-cluster {namespace}")
    assert restorations >= 1
    operator.resync_rounds(3)
    # Restored once, not fought over: no further applies, and never a conflict.
    assert operator.log.read_text().count(f"of Deployment/owned in in-cluster {namespace}") == (
        restorations
    )
    conflicts_after = scrape(operator).get(
        'llmfleet_api_requests_total{cluster="in-cluster",code="409",verb="APPLY"}', 0
    )
    assert conflicts_after == conflicts_before


CANARY = "canary-7f3a9c1e-do-not-leak"


def test_a_secret_value_appears_nowhere_but_in_secrets(
    fleet: Fleet, namespace: str, operator: Operator
) -> None:
    core = client.CoreV1Api(fleet.cloud)
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "keys"}, "stringData": {"hf": CANARY, "api": CANARY}}
    )
    log_start = operator.log.stat().st_size
    # A model whose credentials are mirrored into the member cluster, a managed model with a
    # provider key, and an endpoint with an auth key over both.
    create(
        fleet, namespace,
        llmd("hci", "onprem", model={"name": "m", "credentialsSecretRef": {"name": "keys", "key": "hf"}},
             placement=pinned(topology.ONPREM)),
    )  # fmt: skip
    managed = managed_llmd(
        "provider",
        provider="openai-compatible",
        url="http://127.0.0.1:9/v1",
        deployment="m",
        apiKeySecretRef={"name": "keys", "key": "api"},
        egressCIDRs=["127.0.0.1/32"],
    )
    create(fleet, namespace, managed)
    create_chat_endpoint(
        fleet.cloud, namespace, "chat",
        sites=[{"location": "cloud"}],
        backends=[{"llmDeploymentRef": {"name": "hci"}}, {"llmDeploymentRef": {"name": "provider"}}],
        auth={"apiKeySecretRef": {"name": "keys", "key": "api"}},
    )  # fmt: skip
    for name in ("hci", "provider"):
        wait_condition(fleet, namespace, name, "Ready", "True")
    wait_until(
        lambda: ready(resources.get(fleet.cloud, namespace, "chatendpoints", "chat")),
        what="the endpoint",
    )
    # The member cluster's copy is a Secret, which is where the value belongs.
    mirrored = client.CoreV1Api(fleet.onprem).read_namespaced_secret("keys", namespace)
    assert base64.b64decode(mirrored.data["hf"]).decode() == CANARY

    forms = (CANARY, base64.b64encode(CANARY.encode()).decode())
    leaks: list[str] = []

    def check(where: str, text: str) -> None:
        leaks.extend(f"{where} holds {form!r}" for form in forms if form in text)

    with operator.log.open("rb") as log:
        log.seek(log_start)
        check("the operator's debug log", log.read().decode(errors="replace"))
    for cluster, api in fleet.clients().items():
        core_api = client.CoreV1Api(api)
        serialize = client.ApiClient().sanitize_for_serialization
        check(f"{cluster} Events", json.dumps(serialize(core_api.list_event_for_all_namespaces())))
        check(f"{cluster} ConfigMaps", json.dumps(serialize(core_api.list_namespaced_config_map(namespace))))  # fmt: skip
        for kind, objects in namespace_objects(api, namespace).items():
            for obj in objects:
                meta = obj.get("metadata") or {}
                check(f"{cluster} {kind}/{meta.get('name')} annotations", json.dumps(meta.get("annotations") or {}))  # fmt: skip
                if kind != "Secret":
                    check(f"{cluster} {kind}/{meta.get('name')}", json.dumps(obj))
    for plural in ("llmdeployments", "chatendpoints"):
        for obj in client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", namespace, plural
        )["items"]:
            check(f"{plural}/{obj['metadata']['name']}", json.dumps(obj))
    assert leaks == []


def namespace_objects(api: client.ApiClient, namespace: str) -> dict[str, list[dict[str, Any]]]:
    serialize = client.ApiClient().sanitize_for_serialization
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    networking = client.NetworkingV1Api(api)
    return {
        "Secret": serialize(core.list_namespaced_secret(namespace).items),
        "Service": serialize(core.list_namespaced_service(namespace).items),
        "ServiceAccount": serialize(core.list_namespaced_service_account(namespace).items),
        "Pod": serialize(core.list_namespaced_pod(namespace).items),
        "Deployment": serialize(apps.list_namespaced_deployment(namespace).items),
        "NetworkPolicy": serialize(networking.list_namespaced_network_policy(namespace).items),
    }


# --- crashes, restarts, outages, throttling -------------------------------------------------

CHILD_LISTS = {
    "Deployment": lambda api, ns, sel: client.AppsV1Api(api).list_namespaced_deployment(ns, label_selector=sel),
    "Service": lambda api, ns, sel: client.CoreV1Api(api).list_namespaced_service(ns, label_selector=sel),
    "ServiceAccount": lambda api, ns, sel: client.CoreV1Api(api).list_namespaced_service_account(ns, label_selector=sel),
    "NetworkPolicy": lambda api, ns, sel: client.NetworkingV1Api(api).list_namespaced_network_policy(ns, label_selector=sel),
    "PodDisruptionBudget": lambda api, ns, sel: client.PolicyV1Api(api).list_namespaced_pod_disruption_budget(ns, label_selector=sel),
}  # fmt: skip


def light(name: str, location: str, generation_tag: int = 0) -> dict[str, Any]:
    """A CPU model with no replicas: every child, no pod, no capacity needed. An onprem one
    goes to llmfleet-onprem, the member these tests stop, restart and look into."""
    onprem = location == topology.ONPREM.location
    return llmd(
        name, location, gpu={"count": 0}, replicas=0, runtime="llamacpp",
        args=["--ctx-size", str(2048 + generation_tag)],
        placement=pinned(topology.ONPREM) if onprem else {"location": location},
    )  # fmt: skip


def children_in(api: client.ApiClient, namespace: str) -> dict[str, list[str]]:
    """Every labelled child in the namespace of one cluster: owner label -> ["Kind/name"]."""
    found: dict[str, list[str]] = {}
    for kind, list_kind in CHILD_LISTS.items():
        for item in list_kind(api, namespace, labels.OWNER).items:
            owner = item.metadata.labels[labels.OWNER]
            found.setdefault(owner, []).append(f"{kind}/{item.metadata.name}")
    return found


def children_by_owner(fleet: Fleet, namespace: str) -> dict[str, dict[str, list[str]]]:
    """Every labelled child in the namespace: owner label -> cluster -> ["Kind/name"]."""
    found: dict[str, dict[str, list[str]]] = {}
    for cluster, api in fleet.clients().items():
        for owner, children in children_in(api, namespace).items():
            found.setdefault(owner, {})[cluster] = children
    return found


def llmds(fleet: Fleet, namespace: str) -> dict[str, dict[str, Any]]:
    items = client.CustomObjectsApi(fleet.cloud).list_namespaced_custom_object(
        "llmfleet.io", "v1alpha1", namespace, "llmdeployments"
    )["items"]
    return {o["metadata"]["name"]: o for o in items}


def converged(fleet: Fleet, namespace: str, wanted: dict[str, str]) -> list[str]:
    """What still differs from `wanted` (name -> location): [] once everything is true."""
    problems = []
    objects = llmds(fleet, namespace)
    for name, obj in objects.items():
        if name not in wanted:
            problems.append(f"{name} still exists (finalizer: {obj['metadata'].get('finalizers')})")
        elif not ready(obj):
            problems.append(f"{name} is not ready and current: {obj.get('status')}")
    problems += [f"{name} is missing" for name in wanted if name not in objects]
    children = children_by_owner(fleet, namespace)
    owners = {owner_label("LLMDeployment", namespace, n): n for n in wanted}
    for owner, clusters in children.items():
        name = owners.get(owner)
        if name is None:
            problems.append(f"orphaned children of {owner}: {clusters}")
            continue
        cluster = "cloud" if wanted[name] == "cloud" else "onprem"
        if set(clusters) != {cluster}:
            problems.append(f"{name}'s children are in {sorted(clusters)}, not only {cluster}")
        if sorted(clusters[cluster]) != sorted(set(clusters[cluster])):
            problems.append(f"{name} has duplicate children: {clusters[cluster]}")
    problems += [f"{n} has no children" for o, n in owners.items() if o not in children]
    return problems


def test_sigkill_at_random_moments_loses_nothing(
    fleet: Fleet, namespace: str, operator: Operator
) -> None:
    seed = random.randrange(1_000_000)  # noqa: S311 - test schedule, not a secret
    rng = random.Random(seed)  # noqa: S311 - reproducible from the printed seed
    objects = client.CustomObjectsApi(fleet.cloud)
    wanted: dict[str, str] = {}
    lock = threading.Lock()
    stop = threading.Event()
    counts = {"create": 0, "update": 0, "delete": 0}

    def mutate() -> None:
        tag = 0
        while not stop.is_set():
            tag += 1
            name = f"k{rng.randrange(16):02d}"
            location = "cloud" if int(name[1:]) % 2 else "onprem"
            with lock:
                exists = name in wanted
            try:
                if not exists:
                    create(fleet, namespace, light(name, location, tag))
                    counts["create"] += 1
                    with lock:
                        wanted[name] = location
                elif rng.random() < 0.3:
                    objects.delete_namespaced_custom_object("llmfleet.io", "v1alpha1", namespace, "llmdeployments", name)  # fmt: skip
                    counts["delete"] += 1
                    with lock:
                        del wanted[name]
                else:
                    objects.patch_namespaced_custom_object(
                        "llmfleet.io", "v1alpha1", namespace, "llmdeployments", name,
                        {"spec": {"args": ["--ctx-size", str(2048 + tag)]}},
                    )  # fmt: skip
                    counts["update"] += 1
            except client.ApiException as error:
                if error.status != 409:  # a re-create while the old one still finalizes
                    raise
            stop.wait(rng.uniform(0.05, 0.3))

    mutator = threading.Thread(target=mutate, daemon=True)
    mutator.start()
    kills = 0
    try:
        for _ in range(20):
            time.sleep(rng.uniform(0.2, 2.0))
            operator.kill()
            kills += 1
            time.sleep(rng.uniform(0.0, 1.0))
            operator.start()
    finally:
        stop.set()
        mutator.join(timeout=30)
    try:
        wait_until(lambda: not converged(fleet, namespace, wanted), what="convergence", timeout=180)
    except AssertionError as error:
        problems = converged(fleet, namespace, wanted)
        raise AssertionError(f"after {kills} kills (seed {seed}, {counts}): {problems}") from error
    assert kills == 20
    assert sum(counts.values()) > 40, counts


SUPERVISED = ("kube-controller-manager", "kube-scheduler", "kwok-controller")
LEASE_RENEW_DEADLINE = 15  # seconds: the controller manager's and scheduler's default is 10


def api_ready(api: client.ApiClient, namespace: str, *, hub: bool) -> bool:
    """Serving again, the hub's custom resources included (their paths come up last)."""
    try:
        if hub:
            client.CustomObjectsApi(api).list_namespaced_custom_object(
                "llmfleet.io", "v1alpha1", namespace, "llmdeployments"
            )
        client.AppsV1Api(api).list_namespaced_deployment(namespace)
    except Exception:  # noqa: BLE001 - refused or still starting: ask again
        return False
    return True


def members_deployment_args(api: client.ApiClient, namespace: str, name: str) -> list[str]:
    """The model server's arguments (the runtime's own, then the spec's); [] while missing."""
    try:
        live = client.AppsV1Api(api).read_namespaced_deployment(name, namespace)
    except client.ApiException:
        return []
    return list(live.spec.template.spec.containers[0].args or [])


@pytest.mark.parametrize("restarted", ["cloud", "onprem"])
def test_an_api_server_restart_is_ridden_out_without_restarting_the_operator(
    fleet: Fleet, namespace: str, operator: Operator, restarted: str
) -> None:
    create(fleet, namespace, light("on-hub", "cloud"))
    create(fleet, namespace, light("on-member", "onprem"))
    for name in ("on-hub", "on-member"):
        wait_condition(fleet, namespace, name, "Ready", "True")
    assert operator.process is not None
    pid = operator.process.pid
    spec = {"cloud": topology.CLOUD, "onprem": topology.ONPREM}[restarted]
    api = fleet.clients()[restarted]

    others = [components.snapshot(spec, c) for c in SUPERVISED]
    stopped = components.stop(spec, "kube-apiserver")
    try:
        time.sleep(3)
    finally:
        components.start(stopped)
    try:
        ridden_out(fleet, namespace, operator, api, hub=restarted == "cloud")
    finally:
        # Lease-holding components exit within their renew deadline when they could not
        # reach the API server; past it, what is still running stays up.
        time.sleep(LEASE_RENEW_DEADLINE)
        components.revive(others)
    assert operator.process is not None
    assert operator.process.poll() is None
    assert operator.process.pid == pid


def ridden_out(
    fleet: Fleet, namespace: str, operator: Operator, api: client.ApiClient, *, hub: bool
) -> None:
    wait_until(
        lambda: api_ready(api, namespace, hub=hub),
        what="the API server to serve again",
        timeout=90,
    )

    # Changes after the restart reach the hub's watch and the member's children.
    for name, tag in (("on-hub", 7), ("on-member", 8)):
        patch_spec(fleet, namespace, name, {"args": ["--ctx-size", str(4000 + tag)]})
    create(fleet, namespace, light("after", "onprem"))
    for name in ("on-hub", "on-member", "after"):
        wait_condition(fleet, namespace, name, "Ready", "True", timeout=120)
    wait_until(
        lambda: members_deployment_args(fleet.onprem, namespace, "on-member")[-2:] == ["--ctx-size", "4008"],
        what="the member's Deployment to carry the change",
    )  # fmt: skip
    assert members_deployment_args(fleet.cloud, namespace, "on-hub")[-2:] == ["--ctx-size", "4007"]


def test_a_member_outage_deletes_and_moves_nothing_and_converges_after(
    fleet: Fleet, namespace: str, operator: Operator
) -> None:
    for name, location in (("hub-model", "cloud"), ("kept", "onprem"), ("dropped", "onprem")):
        create(fleet, namespace, light(name, location))
    for name in ("hub-model", "kept", "dropped"):
        wait_condition(fleet, namespace, name, "Ready", "True")
    objects = client.CustomObjectsApi(fleet.cloud)
    hub_children = children_by_owner(fleet, namespace)

    kwok.stop(topology.ONPREM)
    try:
        patch_spec(fleet, namespace, "kept", {"args": ["--ctx-size", "4096"]})
        objects.delete_namespaced_custom_object(
            "llmfleet.io", "v1alpha1", namespace, "llmdeployments", "dropped"
        )
        create(fleet, namespace, light("arrived", "onprem"))
        for name in ("kept", "arrived"):
            obj = wait_condition(fleet, namespace, name, "Ready", "Unknown", timeout=90)
            assert condition(obj, "Ready")["reason"] == "ClusterUnreachable", obj["status"]
        # Pending deletion: the resource waits for its member children, nothing is re-placed.
        dropped = llmds(fleet, namespace)["dropped"]
        assert dropped["metadata"].get("deletionTimestamp")
        hub = {o: c["cloud"] for o, c in hub_children.items() if "cloud" in c}
        assert children_in(fleet.cloud, namespace) == hub
    finally:
        kwok.start(topology.ONPREM)

    wanted = {"hub-model": "cloud", "kept": "onprem", "arrived": "onprem"}
    try:
        wait_until(lambda: not converged(fleet, namespace, wanted), what="convergence", timeout=180)
    except AssertionError as error:
        raise AssertionError(converged(fleet, namespace, wanted)) from error
    assert members_deployment_args(fleet.onprem, namespace, "kept")[-2:] == ["--ctx-size", "4096"]


def throttled_count(operator: Operator) -> float:
    return sum(
        v
        for k, v in scrape(operator).items()
        if k.startswith("llmfleet_api_requests_total{") and 'code="429"' in k
    )


def priority_level_of(api: client.ApiClient) -> str | None:
    """The UID of the APF priority level the API server put one request of `api` in."""
    method, url, headers, _, _ = api.param_serialize(
        "GET", "/version", auth_settings=["BearerToken"]
    )
    try:
        response = api.call_api(method, url, headers, _request_timeout=10)
        response.read()
        found = response.getheaders()
    except client.ApiException as rejected:
        found = rejected.headers or {}
    return found.get("X-Kubernetes-PF-PriorityLevel-UID")


NOISE_ACCOUNT = "llmfleet-noise"
HELD = 12


@pytest.fixture
def jail(fleet: Fleet, tmp_path: Path) -> Iterator[Callable[[], None]]:
    """API Priority and Fairness on the hub: the operator's ServiceAccount shares a one-seat
    priority level that rejects (429, Retry-After) what does not fit with a busy neighbour,
    until the returned release() removes it."""
    flowcontrol = client.FlowcontrolApiserverV1Api(fleet.cloud)
    core = client.CoreV1Api(fleet.cloud)
    core.create_namespaced_service_account(chart.NAMESPACE, {"metadata": {"name": NOISE_ACCOUNT}})
    noise_api = api_client(
        chart.service_account_kubeconfig(
            fleet.cloud, fleet.kubeconfigs["cloud"], tmp_path / "noise.kubeconfig", NOISE_ACCOUNT
        )
    )
    level = {
        "metadata": {"name": "llmfleet-jail"},
        "spec": {
            "type": "Limited",
            "limited": {
                "nominalConcurrencyShares": 0,
                "lendablePercent": 0,
                "borrowingLimitPercent": 0,
                "limitResponse": {"type": "Reject"},
            },
        },
    }
    accounts = [
        {"kind": "ServiceAccount", "serviceAccount": {"name": name, "namespace": chart.NAMESPACE}}
        for name in (chart.SERVICE_ACCOUNT, NOISE_ACCOUNT)
    ]
    schema = {
        "metadata": {"name": "llmfleet-jail"},
        "spec": {
            "priorityLevelConfiguration": {"name": "llmfleet-jail"},
            "matchingPrecedence": 200,
            "rules": [
                {
                    "subjects": accounts,
                    "resourceRules": [
                        {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "namespaces": ["*"], "clusterScope": True}
                    ],
                    "nonResourceRules": [{"verbs": ["*"], "nonResourceURLs": ["*"]}],
                }
            ],
        },
    }  # fmt: skip
    jailed_level = flowcontrol.create_priority_level_configuration(level).metadata.uid
    flowcontrol.create_flow_schema(schema)
    # The API server applies a new FlowSchema a moment later; until then the operator's burst
    # would pass untouched and there would be nothing left to throttle.
    wait_until(lambda: priority_level_of(noise_api) == jailed_level, what="the jail to be in force", timeout=30)  # fmt: skip
    released = threading.Event()

    def neighbour() -> None:
        while not released.is_set():
            try:
                raw_get(noise_api, "/openapi/v2", timeout=10)
            except Exception:  # noqa: BLE001, S112 - rejected or slow: it keeps pressing
                continue

    threads = [threading.Thread(target=neighbour, daemon=True) for _ in range(3)]
    for thread in threads:
        thread.start()

    def release() -> None:
        released.set()
        for delete in (
            flowcontrol.delete_flow_schema,
            flowcontrol.delete_priority_level_configuration,
        ):
            try:
                delete("llmfleet-jail")
            except client.ApiException as error:
                if error.status != 404:
                    raise

    try:
        yield release
    finally:
        release()
        for thread in threads:
            thread.join(timeout=15)
        core.delete_namespaced_service_account(NOISE_ACCOUNT, chart.NAMESPACE)


def test_throttled_requests_wait_as_asked_and_converge(
    fleet: Fleet, namespace: str, operator: Operator, jail: Callable[[], None]
) -> None:
    before = throttled_count(operator)
    started = time.monotonic()
    created, last_wave = 0, 0.0

    def throttled_yet() -> bool:
        """Many at once: the operator's workers then send requests side by side, more than fit;
        another wave every 5 s while none was throttled yet (the neighbours' timing varies)."""
        nonlocal created, last_wave
        if throttled_count(operator) > before:
            return True
        if created < 4 * HELD and time.monotonic() - last_wave >= 5:
            for i in range(created, created + HELD):
                create(fleet, namespace, light(f"held-{i}", "cloud" if i % 3 else "onprem"))
            created, last_wave = created + HELD, time.monotonic()
        return False

    wait_until(throttled_yet, what="the operator to be throttled", timeout=45)
    time.sleep(10)
    throttled = throttled_count(operator) - before
    seconds = time.monotonic() - started
    jail()
    # Retry-After is 1 s or more: each of the 8 workers and kopf's few streams wait between
    # tries. A client that ignores it sends hundreds per second.
    assert throttled / seconds < 12, f"{throttled:.0f} throttled requests in {seconds:.0f}s"
    for i in range(created):
        wait_condition(fleet, namespace, f"held-{i}", "Ready", "True", timeout=120)
    assert operator.process is not None
    assert operator.process.poll() is None
