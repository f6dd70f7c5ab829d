"""ChatEndpoint: one OpenAI-compatible endpoint served from one site, or two for hybrid
(cloud + on-prem), in front of self-managed and provider-run backends."""

from __future__ import annotations

import importlib
import re
from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from llmfleet.api.common import (
    DNS_LABEL,
    DNS_SUBDOMAIN,
    ApiModel,
    Cidr,
    ClusterName,
    Condition,
    LabelSelector,
    LocalObjectRef,
    Location,
    ManagedEndpoint,
    Management,
    NamespaceName,
    SecretKeyRef,
    SegmentationStatus,
    cel,
    validations,
)

Strategy = Literal["weighted", "failover", "least-busy", "latency"]
GuardMode = Literal["block", "flag", "off"]
OutputGuardMode = Literal["off", "redact", "block"]

# What the gateway's output guard finds by itself (the plugin's BUILTIN_PATTERNS, same order).
BUILTIN_OUTPUT_KINDS = (
    "private-key",
    "api-key",
    "aws-access-key",
    "aws-secret-key",
    "github-token",
    "slack-token",
    "google-api-key",
    "jwt",
    "bearer-token",
    "email",
    "phone",
)
# Bounds of a pattern of your own: the longest text it may match (the gateway holds back that
# much of a streamed answer), and the ways it may match at one position (what bounds the
# gateway's work per character of an answer).
MAX_PATTERN_CHARS = 128
MAX_PATTERN_WAYS = 256
_REPEATS = ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT")
_SINGLE = ("LITERAL", "NOT_LITERAL", "ANY", "IN")
_BOUNDARIES = ("AT_BOUNDARY", "AT_NON_BOUNDARY")


class Site(ApiModel):
    """One place the endpoint is served from."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "self.management != 'managed' || has(self.managed)",
                "a managed site is run by a provider: set its `managed` block (provider, url, "
                "apiKeySecretRef)",
                field_path=".managed",
                reason="FieldValueRequired",
            ),
            cel(
                "self.management == 'managed' || !has(self.managed)",
                "`managed` is only for managed sites: remove it, or set management to managed",
                field_path=".managed",
                reason="FieldValueForbidden",
            ),
        )
    )

    location: Location
    """cloud or onprem (edge for a single edge site)."""
    management: Management = "self-managed"
    """self-managed: the operator runs a gateway here; managed: a provider-run endpoint."""
    managed: ManagedEndpoint | None = None
    """The provider endpoint of a managed site."""
    replicas: int = Field(default=1, ge=1, le=16)
    """Gateway replicas of a self-managed site."""
    image: str | None = Field(default=None, min_length=1, max_length=512)
    """Overrides the gateway image of a self-managed site."""
    cluster_selector: LabelSelector | None = None
    """Narrows the member clusters of the location by the labels of their registration Secrets."""


class Backend(ApiModel):
    """A model the endpoint routes to: an LLMDeployment, or a provider-run endpoint."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "has(self.llmDeploymentRef) != has(self.managed)",
                "a backend is either an llmDeploymentRef or a managed endpoint: set exactly one",
            )
        )
    )

    name: str | None = Field(default=None, min_length=1, max_length=63, pattern=DNS_SUBDOMAIN)
    """Name of the backend in the gateway and in status; defaults to the LLMDeployment's name
    or the managed deployment's."""
    llm_deployment_ref: LocalObjectRef | None = None
    """An LLMDeployment in the same namespace."""
    managed: ManagedEndpoint | None = None
    """A provider-run endpoint (Azure OpenAI, Azure ML, any OpenAI-compatible URL)."""
    weight: int = Field(default=1, ge=0, le=100)
    """Share of traffic relative to the other backends (weighted routing)."""
    fallback_only: bool = False
    """Only used when the other backends fail."""


class Routing(ApiModel):
    """How requests are spread over backends."""

    strategy: Strategy = "weighted"
    """weighted, failover, least-busy or latency."""
    retries: int = Field(default=2, ge=0, le=10)
    """Retries on another backend after a failure."""
    timeout_seconds: int = Field(default=120, ge=1, le=3600)
    """Per-request timeout."""
    prefer_local: bool = True
    """In a hybrid endpoint, each site prefers backends in its own location and falls back to
    the other site's."""


class Auth(ApiModel):
    """Client authentication at the gateway."""

    api_key_secret_ref: SecretKeyRef | None = None
    """Secret key holding the master key clients present as a bearer token."""


class RateLimit(ApiModel):
    """Limits per gateway, enforced before requests reach a model."""

    requests_per_minute: int | None = Field(default=None, ge=1, le=1_000_000)
    """Requests per minute."""
    tokens_per_minute: int | None = Field(default=None, ge=1, le=1_000_000_000)
    """Tokens per minute."""


def output_pattern_problem(regex: str) -> str | None:
    """Why the gateway cannot scan answers for `regex` in time proportional to their length
    (None when it can). The rules keep backtracking bounded: quantifiers on single characters
    or classes only, a bounded match length, a bounded number of ways to match at one
    position, and nothing that looks beyond the match (backreferences, lookarounds, anchors
    other than \\b): the gateway also scans a streamed answer piece by piece."""
    try:
        re.compile(regex)
    except re.error as error:
        return f"not a regular expression: {error}"
    parsed = importlib.import_module("re._parser").parse(regex)
    if parsed.state.flags & ~re.UNICODE:
        return "flags apply to the whole answer: set them on a group, such as (?i:emp-[0-9]{6})"
    if parsed.state.groupdict:
        return "named groups are not supported: use (?:...)"
    try:
        ways = _ways(parsed)
    except ValueError as problem:
        return str(problem)
    shortest, longest = parsed.getwidth()
    if shortest < 1:
        return "it matches empty text: every part may be absent"
    if longest > MAX_PATTERN_CHARS:
        return (
            f"a match may be longer than {MAX_PATTERN_CHARS} characters: bound every "
            "quantifier, such as [0-9]{1,12} instead of [0-9]+"
        )
    if ways > MAX_PATTERN_WAYS:
        return (
            f"it can match at one position in {ways} ways, more than {MAX_PATTERN_WAYS} (the "
            "product of the lengths each quantifier allows): fix some lengths, such as "
            "[0-9]{6} instead of [0-9]{1,6}"
        )
    return None


def _ways(items: Any) -> int:
    """Ways a parsed expression can match at one position: the product over its parts, the
    sum over alternatives. Refuses what has no bound."""
    total = 1
    for op, value in items:
        name = str(op)
        if name in _REPEATS:
            low, high, sub = value
            if not _single(sub):
                raise ValueError(
                    "quantifiers apply to single characters or classes only, such as [0-9]{6} "
                    "or (?:-|_)?; spell out repeated groups"
                )
            total *= min(high, MAX_PATTERN_WAYS * MAX_PATTERN_CHARS) - low + 1
        elif name == "BRANCH":
            total *= sum(_ways(branch) for branch in value[1])
        elif name in ("SUBPATTERN", "ATOMIC_GROUP"):
            total *= _ways(value[-1] if name == "SUBPATTERN" else value)
        elif name in ("ASSERT", "ASSERT_NOT"):
            raise ValueError("lookahead and lookbehind are not supported")
        elif name in ("GROUPREF", "GROUPREF_EXISTS"):
            raise ValueError("backreferences are not supported")
        elif name == "AT" and str(value) not in _BOUNDARIES:
            raise ValueError("anchors (^, $, \\A, \\Z) are not supported; \\b is")
    return total


def _single(items: Any) -> bool:
    if len(items) != 1:
        return False
    op, value = items[0]
    if str(op) == "SUBPATTERN":
        return _single(value[-1])
    return str(op) in _SINGLE


class OutputPattern(ApiModel):
    """A pattern of your own the output guard also looks for, such as an employee ID."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "!(self.name in " + str(list(BUILTIN_OUTPUT_KINDS)) + ")",
                "the output guard already has a pattern of this name: choose another",
                field_path=".name",
                reason="FieldValueInvalid",
            )
        )
    )

    name: str = Field(min_length=1, max_length=63, pattern=DNS_LABEL)
    """What it finds: answers show [REDACTED:<name>], and the metrics' kind label is name."""
    regex: str = Field(min_length=1, max_length=512)
    """A Python regular expression, for example EMP-[0-9]{6}. It must match at most 128
    characters and at one position in at most 256 ways; quantifiers only on single characters
    or classes; no backreferences, lookarounds, named groups or anchors other than \\b. Flags
    go on a group: (?i:emp-[0-9]{6})."""

    @field_validator("regex")
    @classmethod
    def _scannable(cls, regex: str) -> str:
        problem = output_pattern_problem(regex)
        if problem:
            raise ValueError(f"outputPatterns regex {regex!r}: {problem}")
        return regex


class Guardrails(ApiModel):
    """Checks at the gateway (the model-robustness role): prompts on the way in, answers on the
    way out."""

    prompt_injection: GuardMode = "block"
    """block rejects suspected prompt injection, flag only reports it, off disables the check."""
    max_input_tokens: int = Field(default=8192, ge=1, le=2_000_000)
    """Largest prompt accepted, in tokens."""
    output: OutputGuardMode = "off"
    """What the gateway does with secrets (API keys, tokens, private keys) and personal data
    (e-mail addresses, phone numbers, outputPatterns) in answers, streamed or not: redact
    replaces each with [REDACTED:<kind>], block refuses the answer (400), off passes answers
    unchanged. With redact or block, the gateway serves chat completions, completions and
    embeddings only."""
    output_patterns: list[OutputPattern] = Field(
        default_factory=list,
        max_length=16,
        json_schema_extra={
            "x-kubernetes-list-type": "map",
            "x-kubernetes-list-map-keys": ["name"],
        },
    )
    """Patterns of your own the output guard also looks for, each with a unique name."""


class Ingress(ApiModel):
    """An Ingress in front of the gateway."""

    host: str = Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN)
    """Host name clients use, for example chat.example.com."""
    class_name: str | None = Field(default=None, min_length=1, max_length=253)
    """IngressClass to use."""
    tls_secret_name: str | None = Field(
        default=None, min_length=1, max_length=253, pattern=DNS_SUBDOMAIN
    )
    """Secret with the TLS certificate for the host."""


class Exposure(ApiModel):
    """Who may call the endpoint."""

    allowed_namespaces: list[NamespaceName] = Field(default_factory=list, max_length=32)
    """Namespaces whose pods may call the gateway."""
    allowed_cidrs: list[Cidr] = Field(default_factory=list, max_length=32, alias="allowedCIDRs")
    """Address ranges that may call the gateway."""
    ingress: Ingress | None = None
    """Optional Ingress for callers outside the cluster."""


class ChatEndpointSpec(ApiModel):
    """Desired state of a ChatEndpoint."""

    model_config = ConfigDict(
        json_schema_extra=validations(
            cel(
                "size(self.sites) >= 1 && size(self.sites) <= 2",
                "a ChatEndpoint has 1 site, or 2 for a hybrid endpoint (one cloud, one onprem)",
                field_path=".sites",
            ),
            cel(
                "size(self.sites) != 2 || (self.sites.exists(s, s.location == 'cloud') && "
                "self.sites.exists(s, s.location == 'onprem'))",
                "a hybrid ChatEndpoint has one cloud site and one onprem site",
                field_path=".sites",
            ),
            cel(
                "size(self.backends) >= 1",
                "add at least one backend: an llmDeploymentRef or a managed endpoint",
                field_path=".backends",
                reason="FieldValueRequired",
            ),
            cel(
                "self.backends.exists(b, !b.fallbackOnly)",
                "at least one backend must not be fallbackOnly, or no request is ever served",
                field_path=".backends",
            ),
        )
    )

    model_alias: str = Field(
        min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"
    )
    """The model name clients send (for example chat-default)."""
    sites: list[Site] = Field(max_length=2)
    """Where the endpoint is served: 1 site, or 2 for hybrid (one cloud, one onprem)."""
    backends: list[Backend] = Field(max_length=16)
    """Models behind the endpoint."""
    routing: Routing | None = None
    """How requests are spread over backends."""
    auth: Auth | None = None
    """Client authentication."""
    rate_limit: RateLimit | None = None
    """Request and token limits."""
    guardrails: Guardrails | None = None
    """Prompt-injection and input-size checks, and the output guard."""
    exposure: Exposure | None = None
    """Who may call the endpoint."""


class RouteStatus(ApiModel):
    """One route of a site's gateway: a backend's serving placement, or its one URL."""

    backend: str = Field(max_length=63)
    """Backend name."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster of the placement (empty for a provider endpoint)."""
    location: str = Field(default="", max_length=16)
    """Location of the placement."""
    group: str = Field(default="", max_length=160)
    """Model group in the gateway's config, in the order tried: the model alias (the
    backends' placements in the site's own cluster, or else elsewhere at its location), then
    <alias>--nearby (their other clusters at that location), <alias>--remote (the other
    location), <alias>--fallback (fallbackOnly backends) and <alias>--standby (placements
    without a ready replica while their model has ready ones elsewhere)."""
    weight: int = Field(default=0, ge=0, le=1_000_000)
    """Share of its group's traffic, relative to the group's other routes: the backend's
    weight, divided between its placements by their ready replicas."""
    url: str = Field(default="", max_length=2048)
    """Where the gateway reaches it (a load balancer for a placement in another cluster)."""


class SiteStatus(ApiModel):
    """Observed state of one site."""

    location: str = Field(max_length=16)
    """Location of the site."""
    management: str = Field(max_length=16)
    """self-managed or managed."""
    model: str = Field(default="", max_length=128)
    """Chat endpoint model of the site, as the catalogue names it (2.1 to 2.4)."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster serving the site (empty for a managed site)."""
    url: str = Field(default="", max_length=2048)
    """Base URL of the site."""
    ready: bool = False
    """Whether the site answers."""
    routes: list[RouteStatus] | None = Field(default=None, max_length=256)
    """The routes of a self-managed site's gateway, as its config has them (none for a
    managed site, or one a FleetPolicy refuses)."""


class BackendStatus(ApiModel):
    """Observed state of one backend."""

    name: str = Field(max_length=63)
    """Backend name."""
    location: str = Field(default="", max_length=16)
    """Location of the backend (managed backends count as cloud)."""
    url: str = Field(default="", max_length=2048)
    """Where the gateways reach it."""
    ready: bool = False
    """Whether it is ready."""
    state: str = Field(default="", max_length=16)
    """Ready, NotReady, Unknown (its cluster does not answer), Asleep (scaled to zero: a
    request through a gateway wakes it, and is answered by the other backends meanwhile, or
    with 503 and Retry-After), or Refused (a FleetPolicy forbids it: no gateway routes to
    it)."""
    cluster: str = Field(default="", max_length=253)
    """Member cluster serving a self-managed backend."""


class ChatEndpointStatus(ApiModel):
    """Observed state of a ChatEndpoint."""

    observed_generation: int | None = Field(default=None, ge=0)
    """The spec generation this status describes."""
    mode: str = Field(default="", max_length=128)
    """LLM deployment model, as the catalogue numbers and names it (for example 15 LLM
    On-Premises with Mixed Managed/Unmanaged Hybrid Endpoints; edge ones have no number)."""
    url: str = Field(default="", max_length=2048)
    """URL of the first ready site."""
    sites: list[SiteStatus] = Field(default_factory=list, max_length=2)
    """One entry per site."""
    clusters: str = Field(default="", max_length=1024)
    """Where each site runs at a glance: location=cluster (or location=managed), comma-separated."""
    backends: list[BackendStatus] = Field(default_factory=list, max_length=16)
    """One entry per backend."""
    segmentation: SegmentationStatus | None = None
    """Security roles applied and the objects realizing them."""
    child_clusters: list[ClusterName] = Field(default_factory=list, max_length=64)
    """Member clusters holding objects of this endpoint (gateways, paths to backends); each is
    cleaned when it no longer should."""
    conditions: list[Condition] = Field(default_factory=list, max_length=16)
    """Ready, Placed, Segmented, Degraded."""


class ChatEndpoint(ApiModel):
    """An OpenAI-compatible chat endpoint served from a cloud site, an on-prem site or both,
    routing to self-managed and provider-run models with auth, rate limits and guardrails."""

    spec: ChatEndpointSpec
    """Desired state."""
    status: ChatEndpointStatus | None = None
    """Observed state, written by the operator."""
