"""The chart's Grafana dashboards against Grafana's generated schema (@grafana/schema) with the
TypeScript compiler (hack/check-dashboard.sh): they pass, a copy using options and field
config of every panel kind passes, and copies with one mistake each fail, naming the mistake
at its line in the JSON: a misspelled key in a panel, its options, field config, custom
field config or queries, at the top, and values of the wrong type.

Needs Node.js and npm (`make dashboard-check` installs Debian's as root); the pinned packages
come from the npm registry once, into the cache outside the repo. No cluster."""

from __future__ import annotations

import copy
import json
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from localfleet.paths import REPO_ROOT

CHECK = REPO_ROOT / "hack" / "check-dashboard.sh"
DASHBOARD = REPO_ROOT / "charts" / "llmfleet" / "dashboards" / "llmfleet.json"

Dashboard = dict[str, Any]
Part = Callable[[Dashboard], dict[str, Any]]  # finds a part of a dashboard
Change = Callable[[Dashboard], None]  # changes a dashboard in place


def first(dashboard: Dashboard, kind: str) -> dict[str, Any]:
    panel: dict[str, Any] = next(p for p in dashboard["panels"] if p["type"] == kind)
    return panel


def run_check(*dashboards: Path) -> subprocess.CompletedProcess[str]:
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.fail(
            "Node.js and npm are not installed: `make dashboard-check` installs Debian's "
            "nodejs and npm when run as root (or install them and put node and npm on PATH)"
        )
    return subprocess.run(
        [str(CHECK), *map(str, dashboards)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip


def with_every_panel_option(dashboard: Dashboard) -> None:
    """Options and field config as Grafana saves them, enums spelled as their JSON values."""
    thresholds = {
        "mode": "absolute",
        "steps": [{"color": "red", "value": None}, {"color": "green", "value": 1}],
    }
    first(dashboard, "timeseries").update(
        options={
            "legend": {"displayMode": "table", "placement": "right", "calcs": ["lastNotNull"]},
            "tooltip": {"mode": "multi", "sort": "desc"},
        },
        fieldConfig={
            "defaults": {
                "unit": "short",
                "min": 0,
                "custom": {"drawStyle": "line", "lineWidth": 1, "fillOpacity": 10,
                           "stacking": {"mode": "normal", "group": "A"}},
            },
            "overrides": [
                {"matcher": {"id": "byName", "options": "load"},
                 "properties": [{"id": "unit", "value": "reqps"}]},
            ],
        },
    )  # fmt: skip
    first(dashboard, "stat").update(
        options={
            "colorMode": "background", "graphMode": "none", "textMode": "value",
            "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
        },
        fieldConfig={
            "defaults": {"thresholds": thresholds, "color": {"mode": "thresholds"},
                         "mappings": [{"type": "value", "options": {"0": {"text": "down"}}}]},
            "overrides": [],
        },
    )  # fmt: skip
    first(dashboard, "table").update(
        options={"showHeader": True, "sortBy": [{"displayName": "Value", "desc": True}]},
        fieldConfig={
            "defaults": {"custom": {"align": "auto", "cellOptions": {"type": "color-text"}}},
            "overrides": [],
        },
        transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True}}}],
    )
    first(dashboard, "bargauge").update(
        options={"displayMode": "gradient", "orientation": "horizontal", "showUnfilled": True}
    )
    first(dashboard, "timeseries")["targets"][0].update(
        {"instant": False, "range": True, "format": "time_series", "editorMode": "code"}
    )
    dashboard.update(graphTooltip=1, editable=True)


@dataclass(frozen=True)
class Mistake:
    name: str
    make: Change
    marker: str  # a string on the mistaken line of the written JSON
    error: str  # what tsc says


def set_in(path: Part, key: str, value: Any) -> Change:
    return lambda dashboard: path(dashboard).__setitem__(key, value)


def rename(path: Part, old: str, new: str) -> Change:
    return lambda dashboard: path(dashboard).__setitem__(new, path(dashboard).pop(old))


def timeseries(dashboard: Dashboard) -> dict[str, Any]:
    return first(dashboard, "timeseries")


def custom(dashboard: Dashboard) -> dict[str, Any]:
    panel = timeseries(dashboard)
    panel["fieldConfig"] = {"defaults": {"custom": {}}, "overrides": []}
    custom: dict[str, Any] = panel["fieldConfig"]["defaults"]["custom"]
    return custom


def defaults(dashboard: Dashboard) -> dict[str, Any]:
    panel = timeseries(dashboard)
    panel["fieldConfig"] = {"defaults": {}, "overrides": []}
    found: dict[str, Any] = panel["fieldConfig"]["defaults"]
    return found


def options(dashboard: Dashboard) -> dict[str, Any]:
    panel = timeseries(dashboard)
    panel["options"] = {}
    found: dict[str, Any] = panel["options"]
    return found


def unknown(key: str) -> str:
    return f"""Object literal may only specify known properties, and '"{key}"' does not exist"""


MISTAKES = [
    Mistake("panel key", rename(timeseries, "gridPos", "gridpos"), '"gridpos"',
            unknown("gridpos")),
    Mistake("query key", rename(lambda d: timeseries(d)["targets"][0], "legendFormat",
                                "legendFromat"), '"legendFromat"', unknown("legendFromat")),
    Mistake("field config key", set_in(defaults, "unitt", "short"), '"unitt"',
            unknown("unitt")),
    Mistake("custom field config key", set_in(custom, "lineWidht", 2), '"lineWidht"',
            unknown("lineWidht")),
    Mistake("options key", set_in(options, "legnd", {"showLegend": False}), '"legnd"',
            unknown("legnd")),
    Mistake("dashboard key", set_in(lambda d: d, "refrsh", "1m"), '"refrsh"',
            unknown("refrsh")),
    Mistake("grid size as a string", set_in(lambda d: first(d, "stat")["gridPos"], "w", "6"),
            '"w": "6"', "Type 'string' is not assignable to type 'number'"),
    Mistake("query as a number", set_in(lambda d: first(d, "stat")["targets"][0], "expr", 1),
            '"expr": 1', "Type 'number' is not assignable to type 'string'"),
    Mistake("legend mode not in the enum",
            set_in(options, "legend", {"displayMode": "tabular"}), '"displayMode": "tabular"',
            """Type '"tabular"' is not assignable to type"""),
    Mistake("unknown panel type", set_in(lambda d: first(d, "bargauge"), "type", "bar-gauge"),
            '"type": "bar-gauge"', "Type '\"bar-gauge\"' is not assignable to type"),
]  # fmt: skip


def written(dashboard: Dashboard, path: Path) -> Path:
    path.write_text(json.dumps(dashboard, indent=2) + "\n")
    return path


@pytest.fixture(scope="module")
def original() -> Dashboard:
    loaded: Dashboard = json.loads(DASHBOARD.read_text())
    return loaded


def test_the_chart_dashboards_and_every_panel_option_pass(
    original: Dashboard, tmp_path: Path
) -> None:
    rich = copy.deepcopy(original)
    with_every_panel_option(rich)
    result = run_check()  # the chart's dashboards, as `make dashboard-check` checks them
    assert result.returncode == 0, result.stderr
    result = run_check(written(rich, tmp_path / "rich.json"))
    assert result.returncode == 0, result.stderr


@pytest.fixture(scope="module")
def mistaken(
    original: Dashboard, tmp_path_factory: pytest.TempPathFactory
) -> tuple[dict[str, Path], str]:
    """Every mistaken copy, checked in one run: the paths and what the check said."""
    work = tmp_path_factory.mktemp("dashboards")
    paths = {}
    for number, mistake in enumerate(MISTAKES):
        dashboard = copy.deepcopy(original)
        mistake.make(dashboard)
        paths[mistake.name] = written(dashboard, work / f"mistake{number}.json")
    result = run_check(*paths.values())
    assert result.returncode != 0, result.stderr
    return paths, result.stderr


@pytest.mark.parametrize("mistake", MISTAKES, ids=lambda m: m.name)
def test_a_mistake_fails_at_its_line(
    mistake: Mistake, mistaken: tuple[dict[str, Path], str]
) -> None:
    paths, output = mistaken
    path = paths[mistake.name]
    lines = path.read_text().splitlines()
    [line] = [n for n, text in enumerate(lines, 1) if mistake.marker in text]
    errors = [e for e in output.splitlines() if e.startswith(f"{path}:")]
    assert errors, f"no error for {path}:\n{output}"
    assert any(e.startswith(f"{path}:{line}:") and mistake.error in e for e in errors), (
        f"expected {mistake.error!r} at {path}:{line}, got:\n" + "\n".join(errors)
    )
