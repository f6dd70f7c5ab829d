"""Runs a validation scan exactly as the operator rendered it, on this machine, with garak from
.venv-garak (`make garak`): the scan ConfigMap's files, the Job's container command and
environment. Only the paths (config dir, work dir, termination log), the model Service's URL
and `python` are local; nothing else comes from this process's environment."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client

from llmfleet import labels, scan
from llmfleet.api.validation import Validation
from llmfleet.names import owner_label
from llmfleet.reconcile import validation as validating
from llmfleet.render import validation as scan_render
from llmfleet.render.common import Owner
from localfleet.paths import REPO_ROOT

GARAK_PYTHON = REPO_ROOT / ".venv-garak" / "bin" / "python"


@dataclass
class ScanRun:
    exit_code: int
    seconds: float
    summary: str  # what the pod writes to its termination message
    output: str

    def status_entry(self, validation: Validation) -> dict[str, Any]:
        """What the operator writes to status.validation.clusters[] for this scan's Job."""
        job = {
            "metadata": {"name": "local-scan"},
            "status": {
                "conditions": [{"type": "Complete", "status": "True"}],
                "completionTime": "2026-01-01T00:00:00Z",
            },
        }
        return validating.judged(self.summary, job, validation, "local")


def from_cluster(
    api: client.ApiClient, namespace: str, llm: str
) -> tuple[dict[str, str], dict[str, Any]]:
    """The LLMDeployment `llm`'s scan ConfigMap files and its first scan Job's container."""
    owner = Owner("LLMDeployment", namespace, llm, "")
    name = scan_render.resource_name(owner)
    files = client.CoreV1Api(api).read_namespaced_config_map(name, namespace).data
    selector = f"{labels.OWNER}={owner_label('LLMDeployment', namespace, llm)}"
    jobs = client.BatchV1Api(api).list_namespaced_job(namespace, label_selector=selector)
    scans = [j for j in jobs.items if (j.metadata.labels or {}).get(labels.STAGE) == "validation"]
    if not scans:
        raise RuntimeError(f"LLMDeployment {llm} has no scan Job in namespace {namespace}")
    pod = api.sanitize_for_serialization(scans[0].spec.template.spec)
    return dict(files), pod["containers"][0]


def run(
    files: Mapping[str, str],
    container: Mapping[str, Any],
    *,
    model_url: str,
    local_url: str,
    workdir: Path,
    python: Path = GARAK_PYTHON,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 300,
) -> ScanRun:
    """Runs the rendered scan against `local_url` in place of the rendered `model_url`."""
    if not python.exists():
        raise FileNotFoundError(f"no {python}: run `make garak` first")
    config_dir, work_dir = workdir / "config", workdir / "work"
    config_dir.mkdir(parents=True, exist_ok=True)
    work_dir.mkdir(parents=True, exist_ok=True)
    log = workdir / "termination-log"
    local = {
        scan.CONFIG_DIR: str(config_dir),
        scan.WORK_DIR: str(work_dir),
        scan.TERMINATION_LOG: str(log),
        model_url: local_url,
    }

    def localized(text: str) -> str:
        for rendered, here in local.items():
            text = text.replace(rendered, here)
        return text

    for name, text in files.items():
        (config_dir / name).write_text(localized(text))
    if local_url not in (config_dir / scan.CONFIG_FILE).read_text():
        raise ValueError(f"the rendered garak config does not name {model_url}")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **{e["name"]: localized(str(e["value"])) for e in container.get("env") or []},
        **(extra_env or {}),
    }
    command = [localized(part) for part in container["command"]]
    if command[0] != "python":
        raise ValueError(f"the scan container runs {command[0]}, not python")
    started = time.monotonic()
    done = subprocess.run(
        [str(python), *command[1:]],
        env=env, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip
    summary = log.read_text() if log.exists() else ""
    return ScanRun(done.returncode, time.monotonic() - started, summary, done.stdout + done.stderr)
