"""FleetPolicy: the model and its CRD, and how the policies selecting a namespace combine into
the most restrictive rules, with violations that name the policy, the field and the fix."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import ValidationError

from llmfleet.api import crd
from llmfleet.api.crd import KINDS
from llmfleet.api.fleetpolicy import FleetPolicy, FleetPolicySpec
from llmfleet.placement.policy import NamedPolicy, Residency, Violation, policies_for, selects

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "config" / "samples" / "fleetpolicy-restricted.yaml"
RESTRICTED = {"kubernetes.io/metadata.name": "team-a", "llmfleet.io/data-class": "restricted"}
PUBLIC = {"kubernetes.io/metadata.name": "team-b", "llmfleet.io/data-class": "public"}
UNLABELLED = {"kubernetes.io/metadata.name": "team-c"}


def policy(name: str, **spec: Any) -> NamedPolicy:
    return NamedPolicy(name, FleetPolicySpec.model_validate(spec))


ONPREM = policy(
    "restricted-stays-onprem",
    namespaceSelector={"matchLabels": {"llmfleet.io/data-class": "restricted"}},
    allowedLocations=["onprem"],
    managedProviders="Deny",
    crossLocationRouting="Deny",
)
NO_EDGE = policy("no-edge", allowedLocations=["cloud", "onprem"])  # every namespace
CLOUD_ONLY = policy(
    "cloud-only",
    namespaceSelector={"matchLabels": {"llmfleet.io/data-class": "restricted"}},
    allowedLocations=["cloud"],
)
NOT_PUBLIC = policy(
    "not-public-no-managed",
    namespaceSelector={
        "matchExpressions": [
            {"key": "llmfleet.io/data-class", "operator": "NotIn", "values": ["public"]}
        ]
    },
    managedProviders="Deny",
)
CLASSIFIED = policy(
    "classified-no-cross",
    namespaceSelector={
        "matchExpressions": [{"key": "llmfleet.io/data-class", "operator": "Exists"}]
    },
    crossLocationRouting="Deny",
)
ALLOW_ALL = policy("allow-all", namespaceSelector={})


# --- combining -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "policies", "matched", "locations", "limited_by", "managed_by", "cross_by"),
    [
        (RESTRICTED, [], (), None, (), None, None),
        (RESTRICTED, [ONPREM], ("restricted-stays-onprem",), {"onprem"}, ("restricted-stays-onprem",), "restricted-stays-onprem", "restricted-stays-onprem"),
        (PUBLIC, [ONPREM], (), None, (), None, None),
        (UNLABELLED, [ONPREM], (), None, (), None, None),
        (PUBLIC, [NO_EDGE], ("no-edge",), {"cloud", "onprem"}, ("no-edge",), None, None),
        (RESTRICTED, [NO_EDGE, ONPREM], ("no-edge", "restricted-stays-onprem"), {"onprem"}, ("no-edge", "restricted-stays-onprem"), "restricted-stays-onprem", "restricted-stays-onprem"),
        (RESTRICTED, [ONPREM, CLOUD_ONLY], ("cloud-only", "restricted-stays-onprem"), set(), ("cloud-only", "restricted-stays-onprem"), "restricted-stays-onprem", "restricted-stays-onprem"),
        (RESTRICTED, [NOT_PUBLIC], ("not-public-no-managed",), None, (), "not-public-no-managed", None),
        (UNLABELLED, [NOT_PUBLIC], ("not-public-no-managed",), None, (), "not-public-no-managed", None),
        (PUBLIC, [NOT_PUBLIC], (), None, (), None, None),
        (PUBLIC, [CLASSIFIED], ("classified-no-cross",), None, (), None, "classified-no-cross"),
        (UNLABELLED, [CLASSIFIED], (), None, (), None, None),
        (RESTRICTED, [ONPREM, NOT_PUBLIC], ("not-public-no-managed", "restricted-stays-onprem"), {"onprem"}, ("restricted-stays-onprem",), "not-public-no-managed", "restricted-stays-onprem"),
        (UNLABELLED, [ALLOW_ALL], ("allow-all",), None, (), None, None),
    ],
    ids=["no-policy", "one-policy", "selector-other-value", "selector-label-absent",
         "no-selector-selects-all", "intersection", "empty-intersection", "notin-matches",
         "notin-matches-absent-label", "notin-excludes", "exists-matches", "exists-absent",
         "deny-first-by-name", "allow-all-restricts-nothing"],
)  # fmt: skip
def test_policies_combine_to_the_most_restrictive(
    labels: dict[str, str],
    policies: list[NamedPolicy],
    matched: tuple[str, ...],
    locations: set[str] | None,
    limited_by: tuple[str, ...],
    managed_by: str | None,
    cross_by: str | None,
) -> None:
    residency = policies_for(labels, policies)
    assert residency.matched_by == matched
    assert residency.allowed_locations == (None if locations is None else frozenset(locations))
    assert residency.location_limited_by == limited_by
    assert residency.managed_denied_by == managed_by
    assert residency.cross_location_denied_by == cross_by
    assert residency.empty == (not matched)
    assert residency.restricts == bool(
        locations is not None or managed_by is not None or cross_by is not None
    )


def test_the_order_of_the_policies_does_not_matter() -> None:
    policies = [ONPREM, NOT_PUBLIC, NO_EDGE, CLASSIFIED]
    assert policies_for(RESTRICTED, policies) == policies_for(RESTRICTED, policies[::-1])


def test_no_policy_allows_everything() -> None:
    residency = policies_for(RESTRICTED, [])
    assert residency == Residency(namespace="team-a")
    assert residency.allows_location("cloud")
    assert residency.allows_managed()
    assert residency.allows_route("onprem", "cloud")
    assert residency.location_violation("cloud", "spec.placement.location") is None
    assert residency.managed_violation("spec.placement.management") is None
    assert residency.cross_location_violation("onprem", "cloud", "spec.sites[0]") is None


def test_the_namespace_comes_from_its_name_label_unless_given() -> None:
    assert policies_for(RESTRICTED, [ONPREM]).namespace == "team-a"
    assert policies_for(RESTRICTED, [ONPREM], namespace="other").namespace == "other"
    assert policies_for({"llmfleet.io/data-class": "restricted"}, [ONPREM]).namespace == ""


@pytest.mark.parametrize(
    ("selector", "labels", "expected"),
    [
        (None, {}, True),
        ({}, {"a": "b"}, True),
        ({"matchLabels": {"a": "b"}}, {"a": "b", "c": "d"}, True),
        ({"matchLabels": {"a": "b"}}, {"a": "x"}, False),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b", "c"]}]}, {"a": "c"}, True),
        ({"matchExpressions": [{"key": "a", "operator": "In", "values": ["b"]}]}, {}, False),
        ({"matchExpressions": [{"key": "a", "operator": "DoesNotExist"}]}, {}, True),
        ({"matchLabels": {"a": "b"}, "matchExpressions": [{"key": "c", "operator": "Exists"}]}, {"a": "b"}, False),
    ],
    ids=["absent", "empty", "labels", "labels-differ", "in", "in-absent", "does-not-exist",
         "labels-and-expressions"],
)  # fmt: skip
def test_selects(selector: dict[str, Any] | None, labels: dict[str, str], expected: bool) -> None:
    spec = FleetPolicySpec.model_validate(
        {} if selector is None else {"namespaceSelector": selector}
    )
    assert selects(spec, labels) is expected


# --- checks and violations -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("policies", "location", "allowed"),
    [
        ([ONPREM], "onprem", True),
        ([ONPREM], "cloud", False),
        ([NO_EDGE], "edge", False),
        ([NO_EDGE], "cloud", True),
        ([ONPREM, CLOUD_ONLY], "onprem", False),
        ([ONPREM, CLOUD_ONLY], "cloud", False),
        ([NOT_PUBLIC], "edge", True),
    ],
)
def test_allows_location(policies: list[NamedPolicy], location: str, allowed: bool) -> None:
    residency = policies_for(RESTRICTED, policies)
    assert residency.allows_location(location) is allowed
    violation = residency.location_violation(location, "spec.placement.location")
    assert (violation is None) is allowed


@pytest.mark.parametrize(
    ("policies", "route", "allowed"),
    [
        ([ONPREM], ("onprem", "onprem"), True),
        ([ONPREM], ("onprem", "cloud"), False),
        ([ONPREM], ("cloud", "onprem"), False),
        ([NO_EDGE], ("onprem", "cloud"), True),
        ([CLASSIFIED], ("edge", "edge"), True),
    ],
)
def test_allows_route(policies: list[NamedPolicy], route: tuple[str, str], allowed: bool) -> None:
    residency = policies_for(RESTRICTED, policies)
    assert residency.allows_route(*route) is allowed
    assert (residency.cross_location_violation(*route, "spec.sites[1]") is None) is allowed


def test_allows_managed() -> None:
    assert not policies_for(RESTRICTED, [ONPREM]).allows_managed()
    assert policies_for(RESTRICTED, [NO_EDGE, CLOUD_ONLY]).allows_managed()


@pytest.mark.parametrize(
    ("policies", "check", "expected"),
    [
        (
            [ONPREM],
            lambda r: r.location_violation(
                "cloud", "spec.placement.overflow.location", remedy="remove the overflow"
            ),
            Violation(
                "restricted-stays-onprem",
                "spec.placement.overflow.location",
                "spec.placement.overflow.location: cloud is outside the locations FleetPolicy "
                "restricted-stays-onprem allows for namespace team-a (onprem); remove the "
                "overflow or choose one of onprem",
            ),
        ),
        (
            [NO_EDGE, ONPREM],
            lambda r: r.location_violation("edge", "spec.placement.location"),
            Violation(
                "no-edge",
                "spec.placement.location",
                "spec.placement.location: edge is outside the locations FleetPolicies no-edge "
                "and restricted-stays-onprem allow for namespace team-a (onprem); choose one of "
                "onprem",
            ),
        ),
        (
            [NO_EDGE, ONPREM],
            lambda r: r.location_violation("cloud", "spec.sites[0].location"),
            Violation(
                "restricted-stays-onprem",
                "spec.sites[0].location",
                "spec.sites[0].location: cloud is outside the locations FleetPolicy "
                "restricted-stays-onprem allows for namespace team-a (onprem); choose one of "
                "onprem",
            ),
        ),
        (
            [ONPREM, CLOUD_ONLY],
            lambda r: r.location_violation("onprem", "spec.placement.location"),
            Violation(
                "cloud-only",
                "spec.placement.location",
                "spec.placement.location: onprem is not allowed and no location is left for "
                "namespace team-a: FleetPolicy cloud-only allows cloud and FleetPolicy "
                "restricted-stays-onprem allows onprem; ask an admin to widen one of them",
            ),
        ),
        (
            [ONPREM],
            lambda r: r.managed_violation("spec.backends[1].managed"),
            Violation(
                "restricted-stays-onprem",
                "spec.backends[1].managed",
                "spec.backends[1].managed: FleetPolicy restricted-stays-onprem denies managed "
                "(provider-run) models and endpoints for namespace team-a; use a self-managed "
                "model or site instead",
            ),
        ),
        (
            [NOT_PUBLIC, ONPREM],
            lambda r: r.managed_violation(
                "spec.placement.management", remedy="set spec.placement.management to self-managed"
            ),
            Violation(
                "not-public-no-managed",
                "spec.placement.management",
                "spec.placement.management: FleetPolicy not-public-no-managed denies managed "
                "(provider-run) models and endpoints for namespace team-a; set "
                "spec.placement.management to self-managed",
            ),
        ),
        (
            [ONPREM],
            lambda r: r.cross_location_violation("onprem", "cloud", "spec.backends[0]"),
            Violation(
                "restricted-stays-onprem",
                "spec.backends[0]",
                "spec.backends[0]: traffic from a gateway at onprem to a cluster at cloud "
                "crosses locations, which FleetPolicy restricted-stays-onprem denies for "
                "namespace team-a; route only to onprem clusters",
            ),
        ),
        (
            [CLASSIFIED],
            lambda r: r.cross_location_violation(
                "cloud", "onprem", "spec.backends[2]", remedy="remove the backend"
            ),
            Violation(
                "classified-no-cross",
                "spec.backends[2]",
                "spec.backends[2]: traffic from a gateway at cloud to a cluster at onprem "
                "crosses locations, which FleetPolicy classified-no-cross denies for namespace "
                "team-a; remove the backend or route only to cloud clusters",
            ),
        ),
    ],
    ids=["location-with-remedy", "location-two-policies", "location-one-of-two",
         "empty-intersection", "managed", "managed-first-by-name", "cross-location",
         "cross-location-with-remedy"],
)  # fmt: skip
def test_violation_messages_name_the_policy_the_field_and_the_fix(
    policies: list[NamedPolicy], check: Any, expected: Violation
) -> None:
    violation = check(policies_for(RESTRICTED, policies))
    assert violation == expected
    assert "FleetPolic" in violation.message
    assert f" {violation.policy} " in violation.message
    assert violation.message.startswith(f"{violation.field}: ")
    assert "namespace team-a" in violation.message


# --- the model and its CRD -----------------------------------------------------------------


def test_the_sample_parses() -> None:
    (doc,) = [d for d in yaml.safe_load_all(SAMPLE.read_text()) if d]
    assert (doc["apiVersion"], doc["kind"]) == ("llmfleet.io/v1alpha1", "FleetPolicy")
    sample = FleetPolicy.model_validate(doc)
    assert sample.spec.allowed_locations == ["onprem"]
    assert sample.spec.managed_providers == "Deny"
    assert sample.spec.cross_location_routing == "Deny"
    named = NamedPolicy(doc["metadata"]["name"], sample.spec)
    assert policies_for(RESTRICTED, [named]).allowed_locations == frozenset({"onprem"})
    assert policies_for(PUBLIC, [named]).empty


def test_defaults_allow_everything() -> None:
    spec = FleetPolicySpec()
    assert (spec.namespace_selector, spec.allowed_locations) == (None, None)
    assert (spec.managed_providers, spec.cross_location_routing) == ("Allow", "Allow")


@pytest.mark.parametrize(
    "spec",
    [
        {"allowedLocations": []},
        {"allowedLocations": ["moon"]},
        {"allowedLocations": ["cloud", "onprem", "edge", "cloud"]},
        {"managedProviders": "deny"},
        {"crossLocationRouting": "Sometimes"},
        {"namespaceSelector": {"matchExpressions": [{"key": "a", "operator": "Like"}]}},
    ],
    ids=["no-locations", "unknown-location", "too-many", "lowercase", "unknown-rule", "operator"],
)
def test_invalid_specs_are_refused(spec: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        FleetPolicySpec.model_validate(spec)


INFO = next(info for info in KINDS if info.kind == "FleetPolicy")
MANIFEST = crd.crd(INFO)
SPEC_SCHEMA = MANIFEST["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_the_crd_is_cluster_scoped_with_its_names_and_columns() -> None:
    assert MANIFEST["metadata"]["name"] == "fleetpolicies.llmfleet.io"
    assert MANIFEST["spec"]["scope"] == "Cluster"
    names = MANIFEST["spec"]["names"]
    assert (names["kind"], names["plural"], names["shortNames"]) == (
        "FleetPolicy",
        "fleetpolicies",
        ["fpol"],
    )
    version = MANIFEST["spec"]["versions"][0]
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c for c in version["additionalPrinterColumns"] if not c.get("priority")}
    assert list(columns) == ["Locations", "Managed", "CrossLocation", "Age"]
    assert columns["Managed"]["jsonPath"] == ".spec.managedProviders"


def test_the_other_kinds_stay_namespaced() -> None:
    scopes = {info.kind: crd.crd(info)["spec"]["scope"] for info in KINDS}
    assert scopes == {
        "LLMDeployment": "Namespaced",
        "ChatEndpoint": "Namespaced",
        "MLPipeline": "Namespaced",
        "FleetPolicy": "Cluster",
    }


def test_the_crd_validates_the_locations_and_defaults_the_rules() -> None:
    locations = SPEC_SCHEMA["properties"]["allowedLocations"]
    assert (locations["minItems"], locations["maxItems"]) == (1, 3)
    assert locations["items"]["enum"] == ["cloud", "onprem", "edge"]
    (unique,) = locations["x-kubernetes-validations"]
    assert unique["rule"] == "self.all(l, self.exists_one(m, m == l))"
    assert unique["message"] == "list each location once"
    for rule in ("managedProviders", "crossLocationRouting"):
        assert SPEC_SCHEMA["properties"][rule]["enum"] == ["Allow", "Deny"]
        assert SPEC_SCHEMA["properties"][rule]["default"] == "Allow"
    selector = SPEC_SCHEMA["properties"]["namespaceSelector"]
    assert "namespace" in selector["properties"]["matchLabels"]["description"]
    assert "x-kubernetes-validations" in selector["properties"]["matchLabels"]
