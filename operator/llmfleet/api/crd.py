"""CustomResourceDefinitions generated from the models: the models are the single source of truth.

pydantic's JSON schema is not a Kubernetes structural schema, so it is rewritten here: `$ref`s
inlined, `anyOf` with null collapsed to the non-null branch (absent, not null, means unset),
`additionalProperties: false`, titles and `propertyNames` dropped, numeric exclusive bounds
turned into OpenAPI v3.0's boolean form, `const` into a one-value enum.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

from llmfleet.api.chatendpoint import ChatEndpoint
from llmfleet.api.common import GROUP, VERSION, ApiModel
from llmfleet.api.fleetpolicy import FleetPolicy
from llmfleet.api.llmdeployment import LLMDeployment
from llmfleet.api.mlpipeline import MLPipeline

CATEGORY = "llmfleet"
READY_COLUMN = {
    "name": "Ready",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
}
# Why a resource is not Ready (or how it is Ready: Placed, ScaledToZero) at a glance.
READY_REASON_COLUMN = {
    "name": "Reason",
    "type": "string",
    "jsonPath": '.status.conditions[?(@.type=="Ready")].reason',
}
AGE_COLUMN = {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
DROPPED_KEYS = {"title", "additionalProperties", "patternProperties", "propertyNames", "$defs"}


@dataclass(frozen=True)
class KindInfo:
    model: type[ApiModel]
    plural: str
    short_name: str
    printer_columns: list[dict[str, Any]] = field(default_factory=list)
    namespaced: bool = True  # False: cluster-scoped, owned by admins (FleetPolicy)

    @property
    def kind(self) -> str:
        return self.model.__name__

    @property
    def crd_name(self) -> str:
        return f"{self.plural}.{GROUP}"


def column(name: str, json_path: str, type_: str = "string", priority: int = 0) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": name, "type": type_, "jsonPath": json_path}
    if priority:
        entry["priority"] = priority
    return entry


KINDS: tuple[KindInfo, ...] = (
    KindInfo(
        model=LLMDeployment,
        plural="llmdeployments",
        short_name="llmd",
        printer_columns=[
            column("Mode", ".status.mode"),
            column("Location", ".spec.placement.location"),
            column("Management", ".spec.placement.management", priority=1),
            column("GPU", ".spec.gpu.product[*]"),
            column("GPUs", ".spec.gpu.count", "integer"),
            column("Replicas", ".spec.replicas", "integer"),
            column("Clusters", ".status.clusters"),
            # Empty without spec.validation; Passed, Failed, Running, Pending or Unknown.
            column("Validated", ".status.validation.verdict", priority=1),
            READY_COLUMN,
            READY_REASON_COLUMN,
            AGE_COLUMN,
        ],
    ),
    KindInfo(
        model=ChatEndpoint,
        plural="chatendpoints",
        short_name="chat",
        printer_columns=[
            column("Mode", ".status.mode"),
            # One column per location, showing who runs that site: hybrids read at a glance.
            column("Cloud", '.spec.sites[?(@.location=="cloud")].management'),
            column("On-Prem", '.spec.sites[?(@.location=="onprem")].management'),
            column("Edge", '.spec.sites[?(@.location=="edge")].management', priority=1),
            column("Alias", ".spec.modelAlias", priority=1),
            column("URL", ".status.url"),
            column("Clusters", ".status.clusters"),
            READY_COLUMN,
            READY_REASON_COLUMN,
            AGE_COLUMN,
        ],
    ),
    KindInfo(
        model=MLPipeline,
        plural="mlpipelines",
        short_name="mlp",
        printer_columns=[
            column("Option", ".status.option"),
            column("Training", ".spec.training.placement.location"),
            column("Inference", ".spec.inference.placement.location"),
            column("Endpoint", ".spec.endpoint.placement.location"),
            column("Stage", ".status.currentStage"),
            column("Clusters", ".status.clusters"),
            READY_COLUMN,
            READY_REASON_COLUMN,
            AGE_COLUMN,
        ],
    ),
    KindInfo(
        model=FleetPolicy,
        plural="fleetpolicies",
        short_name="fpol",
        printer_columns=[
            # <none>: every location (the API server defaults the two rules to Allow).
            column("Locations", ".spec.allowedLocations[*]"),
            column("Managed", ".spec.managedProviders"),
            column("CrossLocation", ".spec.crossLocationRouting"),
            column("Namespaces", ".status.matchedNamespaces", "integer", priority=1),
            AGE_COLUMN,
        ],
        namespaced=False,
    ),
)


def _resolve(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Inlines `$ref`s, single-element `allOf`s and `anyOf` with null until none is left."""
    node = dict(schema)
    while True:
        if "$ref" in node:
            target = defs[node.pop("$ref").rsplit("/", 1)[-1]]
            node = {**target, **node}  # the field's description wins over the class docstring
        elif "allOf" in node and len(node["allOf"]) == 1:
            node = {**node.pop("allOf")[0], **node}
        elif "anyOf" in node:
            branches = [b for b in node.pop("anyOf") if b.get("type") != "null"]
            if len(branches) != 1:
                raise ValueError(f"cannot express a union of {len(branches)} types structurally")
            if node.get("default", ...) is None:
                del node["default"]
            node = {**branches[0], **node}
        else:
            return node


def _rewrite(key: str, value: Any, defs: Mapping[str, Any]) -> dict[str, Any]:
    """The structural equivalent of one keyword of a resolved node."""
    if key in DROPPED_KEYS:
        return {}
    if key == "const":
        return {"enum": [value]}
    if key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
        return {"minimum" if key == "exclusiveMinimum" else "maximum": value, key: True}
    if key == "properties":
        return {key: {name: structural(prop, defs) for name, prop in value.items()}}
    if key == "items":
        return {key: structural(value, defs)}
    if key == "description":
        return {key: " ".join(value.split())}  # docstrings wrap; kubectl explain re-wraps
    return {key: value}


def _map_values(node: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Maps keep a value schema; key patterns (not structural) become a CEL rule."""
    out: dict[str, Any] = {}
    additional = node.get("additionalProperties")
    if isinstance(additional, dict):
        out["additionalProperties"] = structural(additional, defs)
    for key_pattern, value_schema in (node.get("patternProperties") or {}).items():
        out["additionalProperties"] = structural(value_schema, defs)
        out["x-kubernetes-validations"] = [
            *node.get("x-kubernetes-validations", []),
            {
                "rule": f"self.all(k, k.matches({_cel_string(key_pattern)}))",
                "message": "keys must be valid label keys such as region or example.com/tier",
            },
        ]
    return out


def structural(schema: Mapping[str, Any], defs: Mapping[str, Any]) -> dict[str, Any]:
    """Rewrites one pydantic JSON-schema node (and everything under it) into structural form."""
    node = _resolve(schema, defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        out |= _rewrite(key, value, defs)
    out |= _map_values(node, defs)
    if "properties" in out or "additionalProperties" in out:
        out.setdefault("type", "object")
    return {key: out[key] for key in sorted(out, key=_key_order)}


def _cel_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _key_order(key: str) -> tuple[int, str]:
    """description and type first, nested properties last: the order people read a schema in."""
    first = ("description", "type")
    last = ("properties", "items", "additionalProperties", "required", "x-kubernetes-validations")
    if key in first:
        return (0, str(first.index(key)))
    if key in last:
        return (2, str(last.index(key)))
    return (1, key)


def openapi_schema(model: type[ApiModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    body = structural(raw, raw.get("$defs", {}))
    body["properties"] = {
        "apiVersion": {
            "type": "string",
            "description": "Versioned schema of this object: llmfleet.io/v1alpha1.",
        },
        "kind": {"type": "string", "description": f"Kind of this object: {model.__name__}."},
        "metadata": {"type": "object"},
        **body["properties"],
    }
    return body


def crd(info: KindInfo) -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": info.crd_name,
            "labels": {
                "app.kubernetes.io/name": "llmfleet",
                "app.kubernetes.io/part-of": "llmfleet",
            },
        },
        "spec": {
            "group": GROUP,
            "scope": "Namespaced" if info.namespaced else "Cluster",
            "names": {
                "kind": info.kind,
                "listKind": f"{info.kind}List",
                "plural": info.plural,
                "singular": info.kind.lower(),
                "shortNames": [info.short_name],
                "categories": [CATEGORY],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": info.printer_columns,
                    "schema": {"openAPIV3Schema": openapi_schema(info.model)},
                }
            ],
        },
    }


def render(info: KindInfo) -> str:
    header = "# Generated from operator/llmfleet/api by `make crds`; do not edit.\n"
    return header + yaml.safe_dump(crd(info), sort_keys=False, width=100, allow_unicode=True)


def file_name(info: KindInfo) -> str:
    return f"{GROUP}_{info.plural}.yaml"


def rendered_files() -> dict[str, str]:
    return {file_name(info): render(info) for info in KINDS}
