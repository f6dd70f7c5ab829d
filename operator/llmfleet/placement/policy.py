"""What the FleetPolicies allow a namespace's workloads: locations, managed providers, routing.

Pure: a namespace's labels and the policies come in, one `Residency` comes out. Every policy
whose namespaceSelector matches applies, and they combine to the most restrictive: the
intersection of their allowed locations, and a Deny of any one of them. A restriction records
the policy that set it, so a violation names the policy, the field and the fix.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from llmfleet.api.fleetpolicy import DENY, FleetPolicySpec
from llmfleet.placement.select import selector_matches

# Every namespace carries its own name as a label (Kubernetes 1.21 and later).
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
LOCATION_ORDER = ("cloud", "onprem", "edge")


@dataclass(frozen=True)
class NamedPolicy:
    """A FleetPolicy as policies_for reads it: its name and its spec."""

    name: str
    spec: FleetPolicySpec


@dataclass(frozen=True)
class Violation:
    """A field of a workload that a policy forbids: the policy, the field, and a message a
    person acts on (it names the policy, the field, the namespace and the fix)."""

    policy: str
    field: str
    message: str


@dataclass(frozen=True)
class Residency:
    """The combined rules of every FleetPolicy selecting one namespace.

    `allowed_locations` is None when no matching policy limits locations; an empty set means
    the policies leave no location at all. `location_limits` keeps each limiting policy's own
    locations, by policy name, so a message can say which one rules a location out.
    """

    namespace: str = ""
    matched_by: tuple[str, ...] = ()
    allowed_locations: frozenset[str] | None = None
    location_limited_by: tuple[str, ...] = ()
    location_limits: tuple[tuple[str, frozenset[str]], ...] = ()
    managed_denied_by: str | None = None
    cross_location_denied_by: str | None = None

    @property
    def empty(self) -> bool:
        """No policy selects the namespace."""
        return not self.matched_by

    @property
    def restricts(self) -> bool:
        """Some matching policy limits something (a policy that only says Allow does not)."""
        return (
            self.allowed_locations is not None
            or self.managed_denied_by is not None
            or self.cross_location_denied_by is not None
        )

    def allows_location(self, location: str) -> bool:
        return self.allowed_locations is None or location in self.allowed_locations

    def allows_managed(self) -> bool:
        return self.managed_denied_by is None

    def allows_route(self, from_location: str, to_location: str) -> bool:
        return from_location == to_location or self.cross_location_denied_by is None

    def location_violation(
        self, location: str, field: str, *, remedy: str = ""
    ) -> Violation | None:
        """Why `location`, set at `field`, is not allowed; None when it is. `remedy` is the
        field-specific fix offered before choosing an allowed location (for example "remove
        the overflow")."""
        if self.allows_location(location):
            return None
        allowed = _locations(self.allowed_locations or ())
        ruling_out = [name for name, limit in self.location_limits if location not in limit]
        policies = _policies(ruling_out)
        if not allowed:
            each = " and ".join(
                f"FleetPolicy {name} allows {_locations(limit)}"
                for name, limit in self.location_limits
            )
            message = (
                f"{field}: {location} is not allowed and no location is left for namespace "
                f"{self._namespace}: {each}; ask an admin to widen one of them"
            )
        else:
            fix = f"{remedy} or choose" if remedy else "choose"
            verb = "allow" if len(ruling_out) > 1 else "allows"
            message = (
                f"{field}: {location} is outside the locations {policies} {verb} for namespace "
                f"{self._namespace} ({allowed}); {fix} one of {allowed}"
            )
        return Violation(policy=ruling_out[0], field=field, message=message)

    def managed_violation(self, field: str, *, remedy: str = "") -> Violation | None:
        """Why a provider-run (managed) model or endpoint at `field` is not allowed; None when
        it is. `remedy` replaces the default fix (use a self-managed one instead)."""
        if self.managed_denied_by is None:
            return None
        fix = remedy or "use a self-managed model or site instead"
        return Violation(
            policy=self.managed_denied_by,
            field=field,
            message=(
                f"{field}: FleetPolicy {self.managed_denied_by} denies managed (provider-run) "
                f"models and endpoints for namespace {self._namespace}; {fix}"
            ),
        )

    def cross_location_violation(
        self, from_location: str, to_location: str, field: str, *, remedy: str = ""
    ) -> Violation | None:
        """Why a gateway at `from_location` may not send traffic to a cluster at `to_location`
        (the route set at `field`); None when it may. `remedy` is offered before the default
        fix (route only to clusters of the gateway's location)."""
        if self.allows_route(from_location, to_location):
            return None
        policy = self.cross_location_denied_by or ""
        fix = f"{remedy} or route" if remedy else "route"
        return Violation(
            policy=policy,
            field=field,
            message=(
                f"{field}: traffic from a gateway at {from_location} to a cluster at "
                f"{to_location} crosses locations, which FleetPolicy {policy} denies for "
                f"namespace {self._namespace}; {fix} only to {from_location} clusters"
            ),
        )

    @property
    def _namespace(self) -> str:
        return self.namespace or "(unnamed)"


def selects(spec: FleetPolicySpec, namespace_labels: Mapping[str, str]) -> bool:
    """Whether a policy applies to a namespace with these labels (an absent or empty
    selector selects every namespace)."""
    return selector_matches(spec.namespace_selector, namespace_labels)


def policies_for(
    namespace_labels: Mapping[str, str],
    policies: Iterable[NamedPolicy],
    namespace: str | None = None,
) -> Residency:
    """The policies whose namespaceSelector matches the labels, combined to the most
    restrictive. `namespace` names the namespace in messages; it defaults to the
    kubernetes.io/metadata.name label every namespace carries."""
    name = namespace if namespace is not None else namespace_labels.get(NAMESPACE_NAME_LABEL, "")
    matching = sorted(
        (p for p in policies if selects(p.spec, namespace_labels)), key=lambda p: p.name
    )
    limits = tuple(
        (p.name, frozenset(p.spec.allowed_locations))
        for p in matching
        if p.spec.allowed_locations is not None
    )
    allowed: frozenset[str] | None = None
    for _, limit in limits:
        allowed = limit if allowed is None else allowed & limit
    return Residency(
        namespace=name,
        matched_by=tuple(p.name for p in matching),
        allowed_locations=allowed,
        location_limited_by=tuple(n for n, _ in limits),
        location_limits=limits,
        managed_denied_by=next(
            (p.name for p in matching if p.spec.managed_providers == DENY), None
        ),
        cross_location_denied_by=next(
            (p.name for p in matching if p.spec.cross_location_routing == DENY), None
        ),
    )


def _locations(locations: Iterable[str]) -> str:
    """Locations in the catalogue's order (cloud, onprem, edge), comma-separated."""
    ordered = sorted(
        locations,
        key=lambda x: (LOCATION_ORDER.index(x) if x in LOCATION_ORDER else len(LOCATION_ORDER), x),
    )
    return ", ".join(ordered)


def _policies(names: list[str]) -> str:
    if len(names) == 1:
        return f"FleetPolicy {names[0]}"
    return "FleetPolicies " + " and ".join(names)
