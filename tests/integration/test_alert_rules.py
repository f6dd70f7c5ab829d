"""The chart's alerts under promtool: `promtool check rules` and `promtool test rules` on the
PrometheusRule's `.spec` as `helm template` renders it, with the cases in tests/prometheus/
(one file per alert). Every alert has cases: quiet one evaluation before its `for:` ends,
firing once it has, with its labels and annotations as Prometheus renders them (templated
labels expanded, runbook_url). Every alert has a runbook in docs/runbooks/.

Needs promtool (`make prometheus`) and helm (`make binaries`); no cluster."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from localfleet.paths import REPO_ROOT, bin_dir

CHART = REPO_ROOT / "charts" / "llmfleet"
CASES = REPO_ROOT / "tests" / "prometheus"
RUNBOOKS = REPO_ROOT / "docs" / "runbooks"
RELEASE = "llmfleet"
NAMESPACE = "llmfleet-system"
DURATION = re.compile(r"(\d+)(ms|s|m|h|d)")
SECONDS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400}


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail(
            "promtool is not installed: `make prometheus` installs it (Debian's prometheus)"
        )
    return found


def helm(*args: str, home: Path) -> str:
    path = bin_dir() / "helm"
    if not path.is_file():
        pytest.fail(f"helm is not built ({path} is missing): `make binaries` builds it")
    env = {
        **os.environ,
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_DATA_HOME": str(home / "data"),
    }
    result = subprocess.run(
        [str(path), *args], capture_output=True, text=True, check=False, env=env
    )
    if result.returncode != 0:
        raise RuntimeError(f"`helm {' '.join(args)}` failed:\n{result.stderr}{result.stdout}")
    return result.stdout


def render(home: Path, *values: str) -> dict[str, Any]:
    """The spec of the chart's PrometheusRule, rendered with these --set values."""
    text = helm(
        "template", RELEASE, str(CHART), "--namespace", NAMESPACE,
        "--set", "metrics.prometheusRule.enabled=true", *values,
        "--show-only", "templates/prometheusrule.yaml",
        home=home,
    )  # fmt: skip
    [rule] = [doc for doc in yaml.safe_load_all(text) if doc]
    assert rule["kind"] == "PrometheusRule"
    spec: dict[str, Any] = rule["spec"]
    return spec


def alerts_of(spec: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {rule["alert"]: rule for group in spec["groups"] for rule in group["rules"]}


def seconds(duration: str) -> float:
    parts = DURATION.findall(duration)
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration}"
    return sum(int(n) * SECONDS[u] for n, u in parts)


def case_files() -> list[Path]:
    return sorted(CASES.glob("*.test.yaml"))


def load_cases(path: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(path.read_text())
    return loaded


def alerts_tested_in(path: Path) -> set[str]:
    return {
        check["alertname"]
        for test in load_cases(path)["tests"]
        for check in test.get("alert_rule_test", [])
    }


@pytest.fixture(scope="module")
def helm_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("helm")


@pytest.fixture(scope="module")
def spec(helm_home: Path) -> dict[str, Any]:
    return render(helm_home)


@pytest.fixture(scope="module")
def workdir(spec: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The rendered rules as rules.yaml next to copies of the case files, as they expect."""
    work = tmp_path_factory.mktemp("promtool")
    (work / "rules.yaml").write_text(yaml.safe_dump(spec, sort_keys=False))
    for path in case_files():
        shutil.copy(path, work / path.name)
    return work


def test_promtool_accepts_the_rendered_rules(spec: dict[str, Any], workdir: Path) -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", "rules.yaml"],
        cwd=workdir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert f"SUCCESS: {len(alerts_of(spec))} rules found" in output, output


def test_every_alert_has_promtool_cases(spec: dict[str, Any]) -> None:
    tested = set().union(*(alerts_tested_in(path) for path in case_files()))
    chart = set(alerts_of(spec))
    assert not chart - tested, f"alerts without cases in {CASES}: {sorted(chart - tested)}"
    assert not tested - chart, f"cases for alerts the chart lacks: {sorted(tested - chart)}"


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name)
def test_promtool_cases_pass(path: Path, workdir: Path) -> None:
    result = subprocess.run(
        [promtool(), "test", "rules", path.name],
        cwd=workdir, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 0, f"promtool test rules {path}:\n{result.stdout}{result.stderr}"


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.name)
def test_cases_bracket_the_for_duration_and_check_what_is_rendered(
    path: Path, spec: dict[str, Any]
) -> None:
    """Each alert is quiet at one evaluation and firing at the next, at least `for:` after
    the series start, and a firing case names every label and annotation of the rule."""
    cases = load_cases(path)
    step = seconds(cases.get("evaluation_interval", "1m"))
    rules = alerts_of(spec)
    for alert in alerts_tested_in(path):
        rule = rules[alert]
        quiet, firing = set(), set()
        for test in cases["tests"]:
            for check in test.get("alert_rule_test", []):
                if check["alertname"] != alert:
                    continue
                at = seconds(check["eval_time"])
                if not check.get("exp_alerts"):
                    quiet.add(at)
                    continue
                firing.add(at)
                for expected in check["exp_alerts"]:
                    labels = expected.get("exp_labels", {})
                    assert labels.get("severity") == rule["labels"]["severity"], (alert, labels)
                    assert set(expected.get("exp_annotations", {})) == set(rule["annotations"])
        wait = seconds(rule.get("for", "0s"))
        assert any(f - step in quiet and f >= wait for f in firing), (
            f"{path.name}: {alert} needs a quiet evaluation right before a firing one, at "
            f"least its for: ({rule.get('for', 'none')}) in; quiet at {sorted(quiet)} s, "
            f"firing at {sorted(firing)} s"
        )


def test_every_alert_has_a_summary_a_description_and_a_runbook(spec: dict[str, Any]) -> None:
    base = yaml.safe_load((CHART / "values.yaml").read_text())["metrics"]["prometheusRule"][
        "runbookBaseUrl"
    ]
    home = yaml.safe_load((CHART / "Chart.yaml").read_text())["home"]
    assert base.startswith(home), f"runbookBaseUrl {base} is not under the project's {home}"
    for alert, rule in alerts_of(spec).items():
        annotations = rule["annotations"]
        assert annotations.get("summary"), alert
        assert annotations.get("description"), alert
        page = f"{alert.lower()}.md"
        assert annotations.get("runbook_url") == f"{base}/{page}", alert
        runbook = RUNBOOKS / page
        assert runbook.is_file(), f"{alert}: no runbook {runbook}"
        assert runbook.read_text().startswith(f"# {alert}\n"), f"{runbook} must open with # {alert}"


def test_runbook_base_url_and_operator_selector_are_values(helm_home: Path) -> None:
    spec = render(
        helm_home,
        "--set", "metrics.prometheusRule.runbookBaseUrl=https://runbooks.example.com/llmfleet/",
        "--set-string", 'metrics.prometheusRule.operatorSelector=job="llmfleet"',
    )  # fmt: skip
    alerts = alerts_of(spec)
    for alert, rule in alerts.items():
        expected = f"https://runbooks.example.com/llmfleet/{alert.lower()}.md"
        assert rule["annotations"]["runbook_url"] == expected
    assert alerts["LLMFleetOperatorDown"]["expr"] == 'absent(up{job="llmfleet"} == 1)'


def test_the_operator_is_selected_by_its_own_job_and_namespace(spec: dict[str, Any]) -> None:
    """The ServiceMonitor's job is the metrics Service's name; other targets whose job merely
    contains "llmfleet" (model servers in llmfleet-* namespaces, another release) do not count."""
    expr = alerts_of(spec)["LLMFleetOperatorDown"]["expr"]
    assert expr == f'absent(up{{job="{RELEASE}-metrics", namespace="{NAMESPACE}"}} == 1)'


def test_the_values_schema_refuses_a_runbook_base_that_is_no_url(helm_home: Path) -> None:
    with pytest.raises(RuntimeError, match="runbookBaseUrl"):
        render(helm_home, "--set", "metrics.prometheusRule.runbookBaseUrl=docs/runbooks")
