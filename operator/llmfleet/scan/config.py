"""What the scan Job runs: garak's config, the container's command and environment (pure)."""

from __future__ import annotations

from collections.abc import Iterable
from importlib import resources

import yaml

from llmfleet.scan import scan as pod

GARAK_VERSION = "0.17.1"
TARGET_TYPE = "openai.OpenAICompatible"
# garak's OpenAI-compatible generator reads its key from this variable and stops without a
# report when it is empty. The model servers the operator runs take no key: any value does.
API_KEY_ENV = "OPENAICOMPATIBLE_API_KEY"
API_KEY = "llmfleet-scan"
# The same prompts on every scan of a revision (garak samples under the prompt cap).
SEED = 1


def garak_config(
    probes: Iterable[str],
    model_url: str,
    model_name: str,
    *,
    prompt_cap: int,
    workdir: str = pod.WORK_DIR,
) -> str:
    """garak's config (YAML) for one scan of an OpenAI-compatible server.

    `probes` are spec entries (`module` or `module.Class`, see `probe_problem`); `model_url`
    the server's base URL (`http://<service>.<namespace>.svc:<port>/v1`), `model_name` the
    served model name. Only the probes' primary detectors run (`extended_detectors: false`):
    string matches, none that loads a model (for example `encoding.DecodeMatch`, not
    `encoding.DecodeApprox`, which counts plain refusals as hits, and `dan.DAN`, not
    `mitigation.MitigationBypass`, which misses refusals it has no phrase for). No buffs,
    one generation per prompt, at most `prompt_cap` prompts per probe (some probes ignore the
    cap), the report under `workdir` where the pod script reads it.
    """
    include = [f"{pod.PROBE_PREFIX}{entry.removeprefix(pod.PROBE_PREFIX)}" for entry in probes]
    config = {
        "system": {
            "verbose": 0,
            "narrow_output": True,
            "lite": True,
            "show_z": False,
            "parallel_requests": False,
            "parallel_attempts": False,
        },
        "run": {
            "seed": SEED,
            "generations": 1,
            "soft_probe_prompt_cap": prompt_cap,
            "spec": {"include": include, "exclude": []},
        },
        "plugins": {
            "target_type": TARGET_TYPE,
            "target_name": model_name,
            "extended_detectors": False,
            "generators": {"openai": {"OpenAICompatible": {"uri": model_url}}},
        },
        "reporting": {
            "report_dir": f"{workdir.rstrip('/')}/{pod.REPORT_SUBDIR}",
            "report_prefix": pod.REPORT_PREFIX,
        },
    }
    header = (
        f"# llmfleet validation scan: garak {GARAK_VERSION} against {model_name} at {model_url}\n"
    )
    return header + yaml.safe_dump(config, sort_keys=False, default_flow_style=False)


def command(*, python: str = "python", config_dir: str = pod.CONFIG_DIR) -> list[str]:
    """The scan container's command: the pod script, run by the garak image's Python."""
    return [python, f"{config_dir.rstrip('/')}/{pod.SCRIPT_FILE}"]


def environment(
    *,
    config_dir: str = pod.CONFIG_DIR,
    work_dir: str = pod.WORK_DIR,
    termination_log: str = pod.TERMINATION_LOG,
    timeout_seconds: int = pod.DEFAULT_TIMEOUT_SECONDS,
) -> dict[str, str]:
    """The scan container's environment.

    garak writes under HOME (its log, plugin cache and report), and temporary files go to
    TMPDIR: both are the work dir, an emptyDir under a read-only root filesystem. Hugging Face
    stays offline (nothing is downloaded at scan time; the probes that would are refused),
    without telemetry or progress bars.
    `timeout_seconds` bounds garak; keep it under the Job's activeDeadlineSeconds (at the
    deadline the script is stopped with SIGTERM and still writes what garak reported).
    """
    return {
        "HOME": work_dir,
        "TMPDIR": work_dir,
        "XDG_CACHE_HOME": f"{work_dir}/.cache",
        "XDG_CONFIG_HOME": f"{work_dir}/.config",
        "XDG_DATA_HOME": f"{work_dir}/.local/share",
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
        "HF_HUB_DISABLE_TELEMETRY": "1",
        "DO_NOT_TRACK": "1",
        "TQDM_DISABLE": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
        API_KEY_ENV: API_KEY,
        pod.ENV_CONFIG_DIR: config_dir,
        pod.ENV_WORK_DIR: work_dir,
        pod.ENV_TERMINATION_LOG: termination_log,
        pod.ENV_TIMEOUT: str(timeout_seconds),
    }


def script() -> str:
    """The pod script's source, for the scan's ConfigMap."""
    return resources.files("llmfleet.scan").joinpath(pod.SCRIPT_FILE).read_text()
