"""Model validation with garak: the scan's config, the pod's command and environment, which
probes a scan may name, and (in `report`) the verdict on what garak reported.

The scan runs in a Job next to the model server: the pod script (`scan.py`, shipped in the
scan's ConfigMap beside garak.yaml) runs garak against the server's OpenAI-compatible URL and
writes a compact summary of garak's report to its termination message; `report.parse_summary`
and `report.judge` turn that into the verdict.
"""

from llmfleet.scan.config import (
    API_KEY_ENV,
    GARAK_VERSION,
    command,
    environment,
    garak_config,
    script,
)
from llmfleet.scan.probes import (
    ACTIVE_PROBES,
    DEFAULT_DETECTORS,
    DEFAULT_PROBES,
    DEFAULT_PROMPT_CAP,
    PROVEN_PROBES,
    REFUSED_PROBES,
    probe_problem,
)
from llmfleet.scan.scan import (
    CONFIG_DIR,
    CONFIG_FILE,
    DEFAULT_TIMEOUT_SECONDS,
    MAX_SUMMARY_BYTES,
    SCRIPT_FILE,
    TERMINATION_LOG,
    WORK_DIR,
)

__all__ = [
    "ACTIVE_PROBES",
    "API_KEY_ENV",
    "CONFIG_DIR",
    "CONFIG_FILE",
    "DEFAULT_DETECTORS",
    "DEFAULT_PROBES",
    "DEFAULT_PROMPT_CAP",
    "DEFAULT_TIMEOUT_SECONDS",
    "GARAK_VERSION",
    "MAX_SUMMARY_BYTES",
    "PROVEN_PROBES",
    "REFUSED_PROBES",
    "SCRIPT_FILE",
    "TERMINATION_LOG",
    "WORK_DIR",
    "command",
    "environment",
    "garak_config",
    "probe_problem",
    "script",
]
