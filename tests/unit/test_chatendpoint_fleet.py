"""ChatEndpoints over models spread across the fleet, through the engine: each site routes to
every serving placement (its own cluster first, then its location, then the other, then
fallbacks, weighted by ready replicas), and FleetPolicies refuse sites, provider-run parts
and cross-location routes, against the in-memory fleet (cloud, onprem, onprem2)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from llmfleet.reconcile import chatendpoint, llmdeployment
from llmfleet.render import gateway
from tests.unit.fakeapi import FakeCluster, FakeFleet, Harness, condition

NS = "team"
KIND = chatendpoint.KIND_SPEC
# Three clusters' worth of replicas: 2 on onprem, 2 on onprem2, 1 overflowing to the cloud.
SPREAD: dict[str, Any] = {
    "model": {"name": "m"},
    "runtime": "vllm",
    "replicas": 5,
    "gpu": {"count": 2},
    "placement": {"location": "onprem", "overflow": {"location": "cloud"}},
}
AOAI: dict[str, Any] = {
    "provider": "azure-openai",
    "url": "https://a.openai.azure.com",
    "deployment": "gpt-4o",
    "apiKeySecretRef": {"name": "aoai", "key": "api-key"},
    "egressCIDRs": ["20.61.0.0/16"],
}
MANAGED_SITE: dict[str, Any] = {
    "location": "cloud",
    "management": "managed",
    "managed": {"provider": "azure-ml", "url": "https://e.ml.azure.com"},
}
# The load balancer each cluster gives an export.
ADDRESSES = {"in-cluster": "10.0.0.1", "onprem": "10.0.0.2", "onprem2": "10.0.0.3"}
LOCAL_URL = "http://m.team.svc:8000/v1"


def three() -> Harness:
    h = Harness(fleet=FakeFleet(onprem2=FakeCluster("onprem2")))
    h.secret("aoai", "api-key")
    return h


def model(h: Harness, name: str, spec: dict[str, Any], ready: dict[str, int] | None = None) -> None:
    """An LLMDeployment placed by the engine, its replicas ready (or as many as `ready` says)."""
    h.create("LLMDeployment", name, spec)
    h.reconcile(llmdeployment.KIND_SPEC, name)
    set_ready(h, name, ready)


def set_ready(h: Harness, name: str, ready: dict[str, int] | None = None) -> None:
    for cluster in h.fleet.clusters():
        obj = cluster.objects.get(("Deployment", NS, name))
        if obj is not None:
            count = (ready or {}).get(cluster.name, obj["spec"]["replicas"])
            cluster.set_status("Deployment", NS, name, {"readyReplicas": count})
    h.reconcile(llmdeployment.KIND_SPEC, name)


def endpoint(sites: list[dict[str, Any]], backends: list[dict[str, Any]]) -> dict[str, Any]:
    return {"modelAlias": "chat", "sites": sites, "backends": backends}


def serve(h: Harness, spec: dict[str, Any], name: str = "chat") -> None:
    """The endpoint reconciled until its exports have addresses and its gateways are ready."""
    if ("ChatEndpoint", NS, name) not in h.fleet.hub.objects:
        h.create("ChatEndpoint", name, spec)
    for _ in range(2):
        h.reconcile(KIND, name)
        for cluster in h.fleet.clusters():
            for (kind, _, obj_name), obj in cluster.objects.items():
                if kind == "Service" and "-to-" in obj_name:
                    ingress = [{"ip": ADDRESSES[cluster.name]}]
                    obj["status"] = {"loadBalancer": {"ingress": ingress}}
                if kind == "Deployment" and obj_name.startswith(f"{name}-"):
                    cluster.set_status("Deployment", NS, obj_name, {"readyReplicas": 1})
    h.reconcile(KIND, name)


def config(h: Harness, cluster: str, site: str) -> dict[str, Any]:
    obj = h.fleet.cluster(cluster).objects[("ConfigMap", NS, f"chat-{site}")]
    return dict(yaml.safe_load(obj["data"]["config.yaml"]))


def routes(h: Harness, cluster: str, site: str) -> list[tuple[str, str, str, int]]:
    """(model group, route id, api_base, weight) of each entry of a site's gateway config."""
    return [
        (
            e["model_name"],
            e["model_info"]["id"],
            e["litellm_params"]["api_base"],
            e["litellm_params"]["weight"],
        )
        for e in config(h, cluster, site)["model_list"]
    ]


def chain(h: Harness, cluster: str, site: str) -> list[str]:
    fallbacks = config(h, cluster, site)["router_settings"]["fallbacks"]
    return list(fallbacks[0]["chat"]) if fallbacks else []


def lb(cluster: str) -> str:
    return f"http://{ADDRESSES[cluster]}:8000/v1"


# --- routing to every serving placement -----------------------------------------------------


@pytest.mark.parametrize(
    ("site", "cluster", "ready", "expected", "groups"),
    [
        (
            "onprem",
            "onprem",
            {},
            [
                ("chat", "m@onprem", LOCAL_URL, 1),
                ("chat--nearby", "m@onprem2", lb("onprem2"), 1),
                ("chat--remote", "m@in-cluster", lb("in-cluster"), 1),
                ("chat--fallback", "managed-1", "https://a.openai.azure.com", 1),
            ],
            ["chat--nearby", "chat--remote", "chat--fallback"],
        ),
        (
            "cloud",
            "in-cluster",
            {"onprem2": 1},  # onprem 2 ready, onprem2 1: two thirds and one third
            [
                ("chat", "m@in-cluster", LOCAL_URL, 1),
                ("chat--remote", "m@onprem", lb("onprem"), 2),
                ("chat--remote", "m@onprem2", lb("onprem2"), 1),
                ("chat--fallback", "managed-1", "https://a.openai.azure.com", 1),
            ],
            ["chat--remote", "chat--fallback"],
        ),
        (
            "cloud",
            "in-cluster",
            {"onprem2": 0},  # nothing ready there: no share, a last resort
            [
                ("chat", "m@in-cluster", LOCAL_URL, 1),
                ("chat--remote", "m@onprem", lb("onprem"), 1),
                ("chat--fallback", "managed-1", "https://a.openai.azure.com", 1),
                ("chat--standby", "m@onprem2", lb("onprem2"), 1),
            ],
            ["chat--remote", "chat--fallback", "chat--standby"],
        ),
    ],
)
def test_a_site_routes_to_every_placement_nearest_first_weighted_by_ready_replicas(
    site: str,
    cluster: str,
    ready: dict[str, int],
    expected: list[tuple[str, str, str, int]],
    groups: list[str],
) -> None:
    h = three()
    model(h, "m", SPREAD, ready)
    backends = [{"llmDeploymentRef": {"name": "m"}}, {"managed": AOAI, "fallbackOnly": True}]
    serve(h, endpoint([{"location": site}], backends))
    assert routes(h, cluster, site) == expected
    assert chain(h, cluster, site) == groups
    status = h.status("ChatEndpoint", "chat")
    assert condition(status, "Ready")["status"] == "True", status["conditions"]
    recorded = [
        (r["group"], r["cluster"], r["url"], r["weight"]) for r in status["sites"][0]["routes"]
    ]
    assert recorded == [(g, i.partition("@")[2], u, w) for g, i, u, w in expected]
    h.fleet.reset_counts()
    writes = h.status_writes
    assert h.reconcile(KIND, "chat").status is None
    assert (h.fleet.writes(), h.status_writes) == (0, writes), "a resync writes nothing"


def test_each_other_cluster_exports_the_model_to_the_site_and_the_gateway_may_reach_it() -> None:
    h = three()
    model(h, "m", SPREAD)
    serve(h, endpoint([{"location": "onprem"}], [{"llmDeploymentRef": {"name": "m"}}]))
    for exporting in ("onprem2", "in-cluster"):
        names = h.fleet.cluster(exporting).names()
        assert {"Service/chat-onprem-to-m", "NetworkPolicy/chat-onprem-to-m"} <= names
        admit = h.fleet.cluster(exporting).objects[("NetworkPolicy", NS, "chat-onprem-to-m")]
        assert admit["spec"]["ingress"][0]["from"] == [{"ipBlock": {"cidr": "127.0.0.20/32"}}]
    assert not {n for n in h.fleet.onprem.names() if "-to-" in n}, "its own cluster is local"
    egress = h.fleet.onprem.objects[("NetworkPolicy", NS, "chat-onprem-egress")]["spec"]["egress"]
    blocks = [b["ipBlock"]["cidr"] for rule in egress for b in rule["to"] if "ipBlock" in b]
    assert blocks == ["10.0.0.1/32", "10.0.0.3/32"]
    assert h.status("ChatEndpoint", "chat")["childClusters"] == ["in-cluster", "onprem", "onprem2"]


def test_a_placement_that_goes_away_takes_its_route_and_export_with_it() -> None:
    h = three()
    model(h, "m", SPREAD)
    serve(h, endpoint([{"location": "onprem"}], [{"llmDeploymentRef": {"name": "m"}}]))
    h.update("LLMDeployment", "m", {**SPREAD, "replicas": 4})  # the overflow is not needed
    set_ready(h, "m")
    set_ready(h, "m")
    assert [p["cluster"] for p in h.status("LLMDeployment", "m")["placements"]] == [
        "onprem",
        "onprem2",
    ]
    h.reconcile(KIND, "chat")
    assert [r[1] for r in routes(h, "onprem", "onprem")] == ["m@onprem", "m@onprem2"]
    assert not {n for n in h.fleet.hub.names() if "-to-" in n}


def test_a_silent_placement_keeps_its_route_and_nothing_is_written() -> None:
    h = three()
    model(h, "m", SPREAD)
    serve(h, endpoint([{"location": "onprem"}], [{"llmDeploymentRef": {"name": "m"}}]))
    before = copy.deepcopy(h.fleet.onprem.objects[("ConfigMap", NS, "chat-onprem")])
    h.fleet.onprem2.silent = True  # type: ignore[union-attr]
    h.reconcile(llmdeployment.KIND_SPEC, "m")
    h.fleet.reset_counts()
    h.reconcile(KIND, "chat")
    assert h.fleet.writes() == 0
    assert h.fleet.onprem.objects[("ConfigMap", NS, "chat-onprem")] == before
    assert "m@onprem2" in [r[1] for r in routes(h, "onprem", "onprem")]
    status = h.status("ChatEndpoint", "chat")
    assert "onprem2" in [r["cluster"] for r in status["sites"][0]["routes"]]


def test_a_silent_placement_whose_address_is_not_recorded_leaves_the_gateway_as_it_is() -> None:
    h = three()
    model(h, "m", SPREAD)
    serve(h, endpoint([{"location": "onprem"}], [{"llmDeploymentRef": {"name": "m"}}]))
    stored = h.fleet.hub.objects[("ChatEndpoint", NS, "chat")]["status"]
    for site in stored["sites"]:
        site.pop("routes")  # as an operator before routes were recorded wrote it
    before = copy.deepcopy(h.fleet.onprem.objects[("ConfigMap", NS, "chat-onprem")])
    h.fleet.onprem2.silent = True  # type: ignore[union-attr]
    h.reconcile(llmdeployment.KIND_SPEC, "m")
    h.fleet.reset_counts()
    h.reconcile(KIND, "chat")
    assert h.fleet.writes() == 0
    assert h.fleet.onprem.objects[("ConfigMap", NS, "chat-onprem")] == before


# --- FleetPolicies ----------------------------------------------------------------------------


def policy(h: Harness, **rules: Any) -> None:
    h.policies.policies["team-rules"] = {
        "namespaceSelector": {"matchLabels": {"data-class": "restricted"}},
        **rules,
    }
    h.policies.namespace_labels[NS] = {"data-class": "restricted"}


ONPREM_ONLY = {"allowedLocations": ["onprem"]}
NO_MANAGED = {"managedProviders": "Deny"}
NO_CROSSING = {"crossLocationRouting": "Deny"}
HYBRID = [{"location": "cloud"}, {"location": "onprem"}]
BACKEND = {"llmDeploymentRef": {"name": "m"}}


def hub_site(h: Harness) -> set[str]:
    return {n for n in h.fleet.hub.names() if n.endswith("/chat-cloud")}


@pytest.mark.parametrize(
    ("rules", "sites", "backends", "field", "absent"),
    [
        (ONPREM_ONLY, HYBRID, [BACKEND], "spec.sites[0].location", hub_site),
        (
            NO_MANAGED,
            [MANAGED_SITE, {"location": "onprem"}],
            [BACKEND],
            "spec.sites[0].managed",
            hub_site,
        ),
        (
            NO_MANAGED,
            [{"location": "onprem"}],
            [BACKEND, {"managed": AOAI}],
            "spec.backends[1].managed",
            lambda h: {r[1] for r in routes(h, "onprem", "onprem")} & {"managed-1"},
        ),
        (
            NO_MANAGED,
            [{"location": "onprem"}],
            [BACKEND, {"managed": AOAI, "fallbackOnly": True}],
            "spec.backends[1].managed",
            lambda h: set(chain(h, "onprem", "onprem")) & {"chat--fallback"},
        ),
        (
            NO_CROSSING,
            [{"location": "onprem"}],
            [BACKEND],
            "spec.backends[0].llmDeploymentRef",
            lambda h: (
                {r[1] for r in routes(h, "onprem", "onprem")} & {"m@in-cluster"}
                | {n for n in h.fleet.hub.names() if "-to-" in n}
            ),
        ),
    ],
    ids=["site-location", "managed-site", "managed-backend", "managed-fallback", "crossing"],
)
def test_a_policy_refuses_the_forbidden_part_and_says_which_and_why(
    rules: dict[str, Any],
    sites: list[dict[str, Any]],
    backends: list[dict[str, Any]],
    field: str,
    absent: Any,
) -> None:
    h = three()
    policy(h, **rules)
    model(h, "m", SPREAD)
    h.create("ChatEndpoint", "chat", endpoint(sites, backends))
    outcome = h.reconcile(KIND, "chat")
    serve(h, {})
    status = h.status("ChatEndpoint", "chat")
    ready, degraded = condition(status, "Ready"), condition(status, "Degraded")
    assert (ready["status"], ready["reason"]) == ("False", "PolicyViolation")
    assert (degraded["status"], degraded["reason"]) == ("True", "PolicyViolation")
    assert field in ready["message"]
    assert "FleetPolicy team-rules" in ready["message"]
    assert ("Warning", "PolicyViolation") in [(e.type, e.reason) for e in outcome.events]
    assert not absent(h), "nothing of the forbidden part is applied"
    assert "Deployment/chat-onprem" in h.fleet.onprem.names(), "the rest runs"
    h.fleet.reset_counts()
    again = h.reconcile(KIND, "chat")
    assert (again.status, again.events, h.fleet.writes()) == (None, [], 0)


def test_a_refused_site_and_backend_are_reported_as_such() -> None:
    h = three()
    policy(h, **ONPREM_ONLY, **NO_MANAGED)
    model(h, "m", {**SPREAD, "placement": {"location": "onprem"}, "replicas": 4})
    serve(h, endpoint(HYBRID, [BACKEND, {"managed": AOAI, "fallbackOnly": True}]))
    status = h.status("ChatEndpoint", "chat")
    cloud, onprem = status["sites"]
    assert (cloud["cluster"], cloud["ready"], "routes" in cloud) == ("", False, False)
    assert onprem["ready"] is True
    assert [(b["name"], b["state"], b["ready"]) for b in status["backends"]] == [
        ("m", "Ready", True),
        ("managed-1", "Refused", False),
    ]
    placed = condition(status, "Placed")
    assert (placed["status"], placed["reason"]) == ("False", "PolicyViolation")
    env = h.fleet.onprem.objects[("Deployment", NS, "chat-onprem")]["spec"]["template"]["spec"]
    assert "aoai" not in str(env["containers"][0]["env"]), "a refused backend's key is not read"
    assert "Secret/aoai" not in h.fleet.onprem.names()


def hybrid(h: Harness) -> None:
    """A running hybrid endpoint: a model on each location, each site routing to both."""
    model(h, "a", {**SPREAD, "placement": {"location": "onprem"}, "replicas": 1})
    model(h, "b", {**SPREAD, "placement": {"location": "cloud"}, "replicas": 1})
    refs = [{"llmDeploymentRef": {"name": "a"}}, {"llmDeploymentRef": {"name": "b"}}]
    serve(h, endpoint(HYBRID, refs))
    assert condition(h.status("ChatEndpoint", "chat"), "Ready")["status"] == "True"
    assert [r[:2] for r in routes(h, "in-cluster", "cloud")] == [
        ("chat", "b"),
        ("chat--remote", "a"),
    ]


def test_a_tightened_policy_removes_the_crossing_routes_on_the_next_reconcile() -> None:
    h = Harness()
    hybrid(h)
    assert "Service/chat-cloud-to-a" in h.fleet.onprem.names()
    policy(h, **NO_CROSSING)
    h.reconcile(KIND, "chat")
    assert [r[:2] for r in routes(h, "in-cluster", "cloud")] == [("chat", "b")]
    assert [r[:2] for r in routes(h, "onprem", "onprem")] == [("chat", "a")]
    assert not {n for c in h.fleet.clusters() for n in c.names() if "-to-" in n}
    status = h.status("ChatEndpoint", "chat")
    assert condition(status, "Ready")["reason"] == "PolicyViolation"
    message = condition(status, "Ready")["message"]
    assert "spec.backends[0].llmDeploymentRef" in message
    assert "spec.backends[1].llmDeploymentRef" in message
    h.fleet.reset_counts()
    assert h.reconcile(KIND, "chat").status is None
    assert h.fleet.writes() == 0


def test_a_tightened_policy_reaches_a_gateway_left_as_it_is_for_a_silent_cluster() -> None:
    h = three()
    munich = {"clusterSelector": {"matchLabels": {"region": "dc-munich"}}}
    model(h, "a", {**SPREAD, "placement": {"location": "onprem", **munich}, "replicas": 1})
    model(h, "b", {**SPREAD, "placement": {"location": "cloud"}, "replicas": 1})
    refs = [{"llmDeploymentRef": {"name": "a"}}, {"llmDeploymentRef": {"name": "b"}}]
    serve(h, endpoint([{"location": "onprem"}], refs))
    assert [r[1] for r in routes(h, "onprem", "onprem")] == ["a", "b"]
    for site in h.fleet.hub.objects[("ChatEndpoint", NS, "chat")]["status"]["sites"]:
        site.pop("routes")  # no address recorded for a's route: the gateway would be kept
    h.fleet.onprem2.silent = True  # type: ignore[union-attr]
    h.reconcile(llmdeployment.KIND_SPEC, "a")
    policy(h, **NO_CROSSING)
    h.reconcile(KIND, "chat")
    assert "b" not in [r[1] for r in routes(h, "onprem", "onprem")], "the forbidden route is gone"
    assert "Service/chat-onprem-to-b" not in h.fleet.hub.names()
    assert condition(h.status("ChatEndpoint", "chat"), "Ready")["reason"] == "PolicyViolation"


# --- weights ----------------------------------------------------------------------------------


def route(name: str, cluster: str, ready: int, weight: int = 1) -> gateway.ResolvedBackend:
    return gateway.ResolvedBackend(
        name=name, location="onprem", weight=weight, fallback_only=False, model="m",
        api_base=f"http://{cluster}", cluster=cluster, ready=ready,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("routes_", "weights"),
    [
        ([route("a", "c1", 3)], [1]),  # one route: the backend's weight, whatever is ready
        ([route("a", "c1", 0, 4)], [4]),
        ([route("a", "c1", 2), route("a", "c2", 2)], [1, 1]),  # 2:2 is 1:1
        ([route("a", "c1", 0), route("a", "c2", 0)], [1, 1]),  # nothing ready: evenly
        # a 2:1 over two clusters, b (weight 2) alone, c 1:1: the shares stay 1:2:1.
        (
            [
                route("a", "c1", 2),
                route("a", "c2", 1),
                route("b", "c3", 3, 2),
                route("c", "c4", 5),
                route("c", "c5", 5),
            ],
            [4, 2, 12, 3, 3],
        ),
    ],
)
def test_a_backend_divides_its_weight_between_its_placements_by_ready_replicas(
    routes_: list[gateway.ResolvedBackend], weights: list[int]
) -> None:
    groups = {"chat": list(range(len(routes_)))}
    found = gateway.route_weights(groups, routes_)
    assert [found[i] for i in range(len(routes_))] == weights


def test_a_backend_serving_from_some_clusters_is_ready_while_others_load() -> None:
    h = three()
    model(h, "m", SPREAD, ready={"onprem2": 0})  # onprem serves, onprem2 still loading
    assert condition(h.status("LLMDeployment", "m"), "Ready")["status"] == "False"
    serve(h, endpoint([{"location": "onprem"}], [{"llmDeploymentRef": {"name": "m"}}]))
    backends = h.status("ChatEndpoint", "chat")["backends"]
    assert [b["ready"] for b in backends] == [True]
