"""Argo CD resource health checks for the three kinds, run in Lua 5.1 (the language of Argo CD's
gopher-lua) over each check's health_test.yaml cases, the way Argo CD's own tests run them."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from lupa import lua51

CUSTOMIZATIONS = (
    Path(__file__).resolve().parents[2] / "config" / "argocd" / "resource_customizations"
)
CHECKS = sorted(CUSTOMIZATIONS.glob("*/*/health.lua"))
KINDS = ("LLMDeployment", "ChatEndpoint", "MLPipeline")
ARGO_STATUSES = {"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}


def to_lua(runtime: Any, value: Any) -> Any:
    """JSON-like data as Argo CD hands it to a script: objects and arrays become tables."""
    if isinstance(value, dict):
        return runtime.table_from({k: to_lua(runtime, v) for k, v in value.items()})
    if isinstance(value, list):
        return runtime.table_from([to_lua(runtime, v) for v in value])
    return value


def assess(script: str, obj: dict[str, Any]) -> dict[str, Any]:
    runtime = lua51.LuaRuntime(unpack_returned_tuples=True)
    runtime.globals().obj = to_lua(runtime, obj)
    result = runtime.execute(script)
    return {"status": result["status"], "message": result["message"]}


def cases() -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for check in CHECKS:
        tests = yaml.safe_load((check.parent / "health_test.yaml").read_text())["tests"]
        found += [(check, case) for case in tests]
    return found


def test_every_kind_has_a_check_laid_out_as_argo_cd_keeps_them() -> None:
    assert [c.parent.name for c in CHECKS] == sorted(KINDS)
    assert {c.parent.parent.name for c in CHECKS} == {"llmfleet.io"}
    for check in CHECKS:
        statuses = {
            case["healthStatus"]["status"]
            for case in yaml.safe_load((check.parent / "health_test.yaml").read_text())["tests"]
        }
        assert {"Healthy", "Progressing", "Degraded"} <= statuses, check.parent.name
        inputs = {
            case["inputPath"]
            for case in yaml.safe_load((check.parent / "health_test.yaml").read_text())["tests"]
        }
        assert "testdata/stale-generation.yaml" in inputs, check.parent.name


@pytest.mark.parametrize(
    ("check", "case"),
    cases(),
    ids=lambda v: v.parent.name if isinstance(v, Path) else v["inputPath"],
)
def test_health_check_case(check: Path, case: dict[str, Any]) -> None:
    obj = yaml.safe_load((check.parent / case["inputPath"]).read_text())
    assert obj["kind"] == check.parent.name
    result = assess(check.read_text(), obj)
    assert result == case["healthStatus"]
    assert result["status"] in ARGO_STATUSES


def test_argocd_cm_patch_carries_every_check() -> None:
    from argocd_cm_patch import patch  # noqa: PLC0415 - hack/ is on the test path

    data = patch()["data"]
    assert set(data) == {f"resource.customizations.health.llmfleet.io_{kind}" for kind in KINDS}
    for check in CHECKS:
        assert (
            data[f"resource.customizations.health.llmfleet.io_{check.parent.name}"]
            == check.read_text()
        )


def test_argocd_manifests_point_at_this_repository_layout() -> None:
    root = CUSTOMIZATIONS.parents[1].parent
    application = yaml.safe_load((root / "config" / "argocd" / "application.yaml").read_text())
    assert (root / application["spec"]["source"]["path"] / "Chart.yaml").exists()
    appset = yaml.safe_load((root / "config" / "argocd" / "applicationset.yaml").read_text())
    template = appset["spec"]["template"]["spec"]
    assert (root / template["source"]["path"]).is_dir()
    assert appset["spec"]["generators"][0]["clusters"]["selector"]["matchLabels"]
