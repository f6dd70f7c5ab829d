"""Which fields another writer took from the operator (managedFields of a live child)."""

from __future__ import annotations

from typing import Any

import pytest

from llmfleet.kube.ownership import taken_fields

DESIRED = {
    "kind": "Deployment",
    "metadata": {"name": "m", "labels": {"app": "m"}},
    "spec": {
        "replicas": 2,
        "template": {
            "spec": {
                "containers": [
                    {"name": "model", "image": "vllm:1", "ports": [{"containerPort": 8000}]}
                ]
            }
        },
    },
}


def live(
    spec: dict[str, Any], *entries: dict[str, Any], labels: dict[str, str] | None = None
) -> dict[str, Any]:
    return {
        "kind": "Deployment",
        "metadata": {"name": "m", "labels": labels or {"app": "m"}, "managedFields": list(entries)},
        "spec": spec,
    }


def entry(manager: str, fields: dict[str, Any], subresource: str | None = None) -> dict[str, Any]:
    return {"manager": manager, "operation": "Update", "fieldsV1": fields} | (
        {"subresource": subresource} if subresource else {}
    )


def container(image: str = "vllm:1", protocol: str = "TCP") -> dict[str, Any]:
    return {
        "name": "model",
        "image": image,
        "ports": [{"containerPort": 8000, "protocol": protocol}],
        "imagePullPolicy": "IfNotPresent",
    }


REPLICAS = {"f:spec": {"f:replicas": {}}}
IMAGE = {
    "f:spec": {
        "f:template": {"f:spec": {"f:containers": {'k:{"name":"model"}': {".": {}, "f:image": {}}}}}
    }
}
PORT = {
    "f:spec": {
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"model"}': {
                        "f:ports": {
                            'k:{"containerPort":8000,"protocol":"TCP"}': {".": {}, "f:protocol": {}}
                        }
                    }
                }
            }
        }
    }
}


@pytest.mark.parametrize(
    ("name", "live_object", "taken"),
    [
        ("scaled by kubectl", live({"replicas": 5, "template": {"spec": {"containers": [container()]}}}, entry("kubectl", REPLICAS, "scale")), ["spec.replicas"]),
        ("same value set by another writer", live({"replicas": 2, "template": {"spec": {"containers": [container()]}}}, entry("helm", REPLICAS)), []),
        ("image edited", live({"replicas": 2, "template": {"spec": {"containers": [container("evil:2")]}}}, entry("kubectl-edit", IMAGE)), ['spec.template.spec.containers.[{"name":"model"}].image']),
        ("defaulted port protocol", live({"replicas": 2, "template": {"spec": {"containers": [container()]}}}, entry("kubectl", PORT)), []),
        ("a label only others set", live({"replicas": 2}, entry("kubectl", {"f:metadata": {"f:labels": {"f:team": {}}}}), labels={"app": "m", "team": "x"}), []),
        ("a label the operator sets, changed", live({"replicas": 2}, entry("kubectl", {"f:metadata": {"f:labels": {"f:app": {}}}}), labels={"app": "other"}), ["metadata.labels.app"]),
        ("status writers are not drift", live({"replicas": 5}, entry("kube-controller-manager", REPLICAS, "status")), []),
        ("the operator's own entry", live({"replicas": 5}, entry("llmfleet", REPLICAS)), []),
        ("no managedFields at all", live({"replicas": 5}), []),
    ],
)  # fmt: skip
def test_taken_fields(name: str, live_object: dict[str, Any], taken: list[str]) -> None:
    assert taken_fields(DESIRED, live_object) == taken, name


def test_atomic_list_with_server_defaults_is_not_drift() -> None:
    desired = {"spec": {"ingress": [{"ports": [{"port": 8000}]}]}}
    edited = {"spec": {"ingress": [{"ports": [{"port": 8000, "protocol": "TCP"}]}]}}
    fields = {"f:spec": {"f:ingress": {}}}
    assert (
        taken_fields(desired, {**edited, "metadata": {"managedFields": [entry("x", fields)]}}) == []
    )
    opened = {"spec": {"ingress": [{"ports": [{"port": 8000}]}, {}]}}
    assert taken_fields(
        desired, {**opened, "metadata": {"managedFields": [entry("x", fields)]}}
    ) == ["spec.ingress"]


RESOURCES = {
    "f:spec": {
        "f:template": {
            "f:spec": {
                "f:containers": {
                    'k:{"name":"model"}': {
                        "f:resources": {"f:limits": {"f:cpu": {}, "f:memory": {}}}
                    }
                }
            }
        }
    }
}


@pytest.mark.parametrize(
    ("desired_limits", "live_limits", "taken"),
    [
        ({"cpu": "0.5", "memory": "1024Mi"}, {"cpu": "500m", "memory": "1Gi"}, []),
        ({"cpu": "1000m", "memory": "1G"}, {"cpu": "1", "memory": "1G"}, []),
        ({"cpu": "500m", "memory": "1Gi"}, {"cpu": "2", "memory": "1Gi"}, ["cpu"]),
        ({"cpu": "1", "memory": "1Gi"}, {"cpu": "1", "memory": "1G"}, ["memory"]),
    ],
)
def test_quantities_compare_by_value(
    desired_limits: dict[str, str], live_limits: dict[str, str], taken: list[str]
) -> None:
    """The server canonicalizes quantities; a co-owner of the same value is not drift."""

    def deployment(limits: dict[str, str]) -> dict[str, Any]:
        model = {"name": "model", "image": "vllm:1", "resources": {"limits": limits}}
        return {"spec": {"template": {"spec": {"containers": [model]}}}}

    live_object = deployment(live_limits) | {
        "metadata": {"managedFields": [entry("kubectl", RESOURCES)]}
    }
    prefix = 'spec.template.spec.containers.[{"name":"model"}].resources.limits.'
    assert taken_fields(deployment(desired_limits), live_object) == [prefix + k for k in taken]
