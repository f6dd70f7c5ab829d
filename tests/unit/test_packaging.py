"""The wheel users install (and the image is built from), and the image's Dockerfile."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_wheel_holds_the_package_its_data_and_the_entry_point(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--wheel-dir", str(tmp_path), str(REPO)],
        check=True,
    )  # fmt: skip
    wheels = list(tmp_path.glob("llmfleet-*.whl"))
    assert len(wheels) == 1, wheels
    with zipfile.ZipFile(wheels[0]) as wheel:
        names = set(wheel.namelist())
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        entry_points = wheel.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
        requires = wheel.read(metadata).decode()
    for module in (
        "llmfleet/__main__.py",
        "llmfleet/handlers/mlpipeline.py",
        "llmfleet/reconcile/chatendpoint.py",
        "llmfleet/render/gateway_plugin/llmfleet_gateway.py",  # read at runtime by the renderer
    ):
        assert module in names, module
    assert not any(n.startswith(("tests/", "hack/", "localfleet/")) for n in names)
    assert "llmfleet = llmfleet.__main__:main" in entry_points
    for dependency in ("kopf", "kubernetes", "pydantic", "prometheus-client"):
        assert f"Requires-Dist: {dependency}" in requires


def test_dockerfile_is_multi_stage_non_root_and_runs_the_operator() -> None:
    lines = [line.strip() for line in (REPO / "Dockerfile").read_text().splitlines()]
    stages = [i for i, line in enumerate(lines) if line.startswith("FROM ")]
    assert len(stages) >= 2, "a build stage and a final stage"
    final = lines[stages[-1] :]
    user = next(line for line in final if line.startswith("USER "))
    uid = user.split()[1].split(":")[0]
    assert uid.isdigit(), "a numeric user, so Pod Security can verify runAsNonRoot"
    assert int(uid) != 0
    assert 'ENTRYPOINT ["llmfleet", "run"]' in final
    final_text = "\n".join(final)
    for tool in ("gcc", "build-essential", "apt-get install", "git "):
        assert tool not in final_text, f"no build tools in the final stage: {tool}"
    assert "pip wheel" not in final_text
    # The chart's pod runs as the image's user.
    deployment = (REPO / "charts" / "llmfleet" / "templates" / "deployment.yaml").read_text()
    assert f"runAsUser: {uid}" in deployment
