"""The CRD generator: structural schemas, bounds everywhere, and drift detection."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import Field

from llmfleet.api import LLMDeployment, crd, crdgen
from llmfleet.api.crd import KINDS, KindInfo, structural

REPO = Path(__file__).resolve().parents[2]
FORBIDDEN = {"$ref", "anyOf", "allOf", "oneOf", "title", "const", "patternProperties", "$defs"}


@pytest.mark.parametrize(
    ("pydantic_schema", "expected"),
    [
        ({"$ref": "#/$defs/A", "description": "field"}, {"description": "field", "type": "object"}),
        (
            {"anyOf": [{"type": "integer", "maximum": 3}, {"type": "null"}], "default": None},
            {"type": "integer", "maximum": 3},
        ),
        ({"allOf": [{"$ref": "#/$defs/A"}]}, {"description": "a class", "type": "object"}),
        (
            {"type": "number", "exclusiveMinimum": 0},
            {"type": "number", "exclusiveMinimum": True, "minimum": 0},
        ),
        ({"const": "x", "type": "string"}, {"type": "string", "enum": ["x"]}),
        ({"type": "object", "additionalProperties": False, "title": "T"}, {"type": "object"}),
        ({"description": "two\n   lines"}, {"description": "two lines"}),
        (
            {"type": "object", "patternProperties": {"^a$": {"type": "string"}}},
            {
                "type": "object",
                "additionalProperties": {"type": "string"},
                "x-kubernetes-validations": [
                    {
                        "rule": "self.all(k, k.matches('^a$'))",
                        "message": "keys must be valid label keys such as region or example.com/tier",
                    }
                ],
            },
        ),
    ],
    ids=[
        "ref",
        "optional",
        "allof",
        "exclusive-minimum",
        "const",
        "closed-object",
        "description",
        "pattern-properties",
    ],
)
def test_structural_rewrites(pydantic_schema: dict[str, Any], expected: dict[str, Any]) -> None:
    defs = {"A": {"type": "object", "description": "a class", "title": "A"}}
    assert structural(pydantic_schema, defs) == expected


def test_unions_of_two_real_types_are_refused() -> None:
    with pytest.raises(ValueError, match="union of 2 types"):
        structural({"anyOf": [{"type": "string"}, {"type": "integer"}]}, {})


def walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, prop in (schema.get("properties") or {}).items():
        yield from walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from walk(schema["additionalProperties"], f"{path}{{}}")


SCHEMAS = {info.kind: crd.openapi_schema(info.model) for info in KINDS}
NODES = [
    (kind, path, node) for kind, schema in SCHEMAS.items() for path, node in walk(schema, kind)
]


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_schemas_are_structural_and_bounded(kind: str) -> None:
    problems = []
    for _, path, node in (n for n in NODES if n[0] == kind):
        if FORBIDDEN & node.keys():
            problems.append(f"{path}: has {sorted(FORBIDDEN & node.keys())}")
        if node.get("additionalProperties") is False:
            problems.append(f"{path}: additionalProperties false")
        if path.split(".")[-1] in ("apiVersion", "kind", "metadata"):
            continue
        if "type" not in node:
            problems.append(f"{path}: no type")
        if node.get("type") == "string" and "maxLength" not in node and "enum" not in node:
            problems.append(f"{path}: unbounded string")
        if node.get("type") == "array" and "maxItems" not in node:
            problems.append(f"{path}: unbounded list")
        if isinstance(node.get("additionalProperties"), dict) and "maxProperties" not in node:
            problems.append(f"{path}: unbounded map")
    assert problems == []


@pytest.mark.parametrize("kind", sorted(SCHEMAS))
def test_every_field_has_a_description(kind: str) -> None:
    undescribed = [
        path
        for k, path, node in NODES
        if k == kind
        and "." in path
        and not path.endswith("[]")
        and not path.endswith("{}")
        and not node.get("description")
        and path.split(".")[-1] not in ("apiVersion", "kind", "metadata")
    ]
    assert undescribed == []


def test_crd_names_categories_and_status_subresource() -> None:
    for info in KINDS:
        manifest = crd.crd(info)
        names = manifest["spec"]["names"]
        assert manifest["metadata"]["name"] == f"{info.plural}.llmfleet.io"
        assert names["categories"] == ["llmfleet"]
        assert names["shortNames"] == [info.short_name]
        version = manifest["spec"]["versions"][0]
        assert version["subresources"] == {"status": {}}
        column_names = [c["name"] for c in version["additionalPrinterColumns"]]
        # A FleetPolicy is read, not reconciled into children: its columns are its rules.
        assert {"Ready", "Age"} <= set(column_names) if info.namespaced else "Age" in column_names
        assert manifest["spec"]["scope"] == ("Namespaced" if info.namespaced else "Cluster")
    assert [info.short_name for info in KINDS] == ["llmd", "chat", "mlp", "fpol"]
    assert [info.kind for info in KINDS if not info.namespaced] == ["FleetPolicy"]


@pytest.mark.parametrize("directory", ["crds", "charts/llmfleet/crds"])
def test_committed_crds_match_the_models(directory: str) -> None:
    assert crdgen.main(["--check", str(REPO / directory)]) == 0


def test_check_fails_after_a_model_change_that_was_not_regenerated(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main([str(tmp_path)]) == 0
    assert crdgen.main(["--check", str(tmp_path)]) == 0

    class ChangedSpec(LLMDeployment.model_fields["spec"].annotation):  # type: ignore[misc,name-defined]
        priority_class: str | None = Field(default=None, max_length=64)
        """A new field."""

    changed = type("LLMDeployment", (LLMDeployment,), {"__annotations__": {"spec": ChangedSpec}})
    kinds = tuple(
        KindInfo(changed, i.plural, i.short_name, i.printer_columns)
        if i.kind == "LLMDeployment"
        else i
        for i in KINDS
    )
    monkeypatch.setattr(crd, "KINDS", kinds)
    assert crdgen.main(["--check", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "priorityClass" in out
    assert "run `make crds` and commit" in out
