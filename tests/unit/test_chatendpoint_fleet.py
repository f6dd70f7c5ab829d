"""ChatEndpoints over models spread across the fleet, through the engine: each site routes to
every serving placement (its own cluster first, then its location, then the other, then
fallbacks, weighted by ready replicas), against the in-memory fleet (cloud, onprem,
onprem2)."""

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
