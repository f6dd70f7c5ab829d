"""FleetPolicy: cluster-scoped data-residency rules that admins set for the namespaces they
select. Tenants cannot weaken them: the workloads of a selected namespace are placed and routed
only as every policy selecting it allows."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from llmfleet.api.common import (
    ApiModel,
    Condition,
    Labels,
    LabelSelector,
    LabelSelectorRequirement,
    Location,
    cel,
    validations,
)

Allowance = Literal["Allow", "Deny"]
ALLOW: Allowance = "Allow"
DENY: Allowance = "Deny"


class NamespaceSelector(LabelSelector):
    """Selects namespaces by their labels; an empty selector selects every namespace."""

    match_labels: Labels | None = None
    """Labels a namespace must carry, all of them (for example llmfleet.io/data-class:
    restricted)."""
    match_expressions: list[LabelSelectorRequirement] | None = Field(default=None, max_length=16)
    """Expressions a namespace's labels must satisfy, all of them."""


class FleetPolicySpec(ApiModel):
    """Desired state of a FleetPolicy: where the workloads of the selected namespaces may run
    and be routed. Where several policies select a namespace, the most restrictive wins."""

    namespace_selector: NamespaceSelector | None = None
    """Namespaces the policy governs, by their labels (matchLabels and matchExpressions, as in
    any label selector); absent or empty selects every namespace."""
    allowed_locations: list[Location] | None = Field(
        default=None,
        min_length=1,
        max_length=3,
        json_schema_extra=validations(
            # No FieldValueDuplicate reason: the API server would drop the message with it.
            cel("self.all(l, self.exists_one(m, m == l))", "list each location once")
        ),
    )
    """Locations the workloads may run at: cloud, onprem, edge; absent allows every location.
    It covers every placement: the preferred location, overflow, failover, gateway sites and
    backends."""
    managed_providers: Allowance = ALLOW
    """Allow, or Deny: no provider-run (managed) models or endpoints for the selected
    namespaces: no managed LLMDeployment and no managed ChatEndpoint site, backend or
    fallback."""
    cross_location_routing: Allowance = ALLOW
    """Allow, or Deny: a gateway sends the traffic of the selected namespaces only to clusters
    of its own site's location (an onprem gateway never forwards to a cloud cluster)."""


class FleetPolicyStatus(ApiModel):
    """Observed state of a FleetPolicy."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this status describes."""
    matched_namespaces: int | None = Field(default=None, ge=0)
    """How many namespaces the selector matches."""
    conditions: list[Condition] = Field(default_factory=list, max_length=8)
    """Ready: the policy is read and enforced."""


class FleetPolicy(ApiModel):
    """Data-residency rules for the workloads of the namespaces it selects: allowed locations,
    provider-run endpoints, routing across locations. Cluster-scoped and owned by admins;
    tenants cannot weaken it."""

    spec: FleetPolicySpec
    """Desired state."""
    status: FleetPolicyStatus | None = None
    """Observed state, written by the operator."""
