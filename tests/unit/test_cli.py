"""`llmfleet explain` on manifests that fit, do not fit, break a policy or are invalid, against
the in-memory fleet; nothing is applied."""

from __future__ import annotations

import io
from typing import Any

import pytest

from llmfleet import cli
from llmfleet.placement.capacity import PodUse
from tests.unit.fakeapi import Harness


def model(name: str, **placement: Any) -> dict[str, Any]:
    return {
        "apiVersion": "llmfleet.io/v1alpha1",
        "kind": "LLMDeployment",
        "metadata": {"name": name, "namespace": "team"},
        "spec": {
            "model": {"name": "m"},
            "replicas": 2,
            "gpu": {"count": 2},
            "placement": {"location": "onprem", **placement},
        },
    }


def explained(h: Harness, doc: dict[str, Any]) -> tuple[bool, dict[str, Any], str]:
    placed, found = cli.explain_document(doc, "default", h.context)
    out = io.StringIO()
    cli.print_explained(found, out)
    return placed, found, out.getvalue()


def test_a_manifest_that_fits_shows_the_decision_and_what_would_be_applied() -> None:
    h = Harness()
    placed, found, text = explained(h, model("fits"))
    assert placed
    assert "Deployment/fits" in found["apply"]["onprem"]
    assert "NetworkPolicy/fits-default-deny" in found["apply"]["onprem"]
    assert "onprem      onprem  2 replica(s)  taken, preferred" in text
    assert "location cloud, not onprem" in text
    assert h.fleet.writes() == 0, "explain applies nothing"


def test_a_manifest_that_does_not_fit_fails_with_free_and_total() -> None:
    h = Harness()
    h.fleet.pods["onprem"] = [PodUse("x/p", "onprem-gpu-0", {"nvidia.com/gpu": 4})]
    placed, _, text = explained(h, model("full"))
    assert not placed
    assert "Placed: False InsufficientGPU" in text
    assert "0/4 GPUs free" in text


def test_a_manifest_that_breaks_a_policy_fails_naming_it() -> None:
    h = Harness()
    h.policies.policies["stay"] = {"allowedLocations": ["onprem"]}
    placed, _, text = explained(h, model("out", overflow={"location": "cloud"}))
    assert not placed
    assert "PolicyViolation" in text
    assert "FleetPolicy stay" in text


@pytest.mark.parametrize(
    ("doc", "expected"),
    [
        ({"kind": "Pod", "metadata": {"name": "x"}}, "is not one of"),
        ({**model("bad"), "spec": {"model": {"name": "m"}}}, "spec is not valid"),
    ],
)
def test_what_cannot_be_read_fails_with_the_reason(doc: dict[str, Any], expected: str) -> None:
    placed, _, text = explained(Harness(), doc)
    assert not placed
    assert expected in text


def test_a_missing_secret_fails() -> None:
    doc = model("creds")
    doc["spec"]["model"]["credentialsSecretRef"] = {"name": "hf", "key": "token"}
    placed, _, text = explained(Harness(), doc)
    assert not placed
    assert "SecretNotFound" in text


def test_usage_without_a_command() -> None:
    assert cli.main([]) == 2
