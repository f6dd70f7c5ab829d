"""The validation scan's pod script: runs garak, then writes a compact summary of its report.

Shipped in the scan's ConfigMap beside garak.yaml and run by the garak image's Python
(standard library only, no llmfleet import):

    python /etc/llmfleet/scan/scan.py

1. runs `python -m garak --config <config dir>/garak.yaml`, bounded by a timeout, streaming
   garak's output to the pod's log;
2. reads garak's report (`<work dir>/report/scan.report.jsonl`, as garak.yaml names it);
3. writes the summary to the termination log, at most 4096 bytes, which the operator reads
   from the pod's status (`llmfleet.scan.report.parse_summary`).

The summary is JSON lines in the shape of garak's own report records, reduced to the fields
the operator judges on, so the same parser reads a full report.jsonl:

    {"entry_type": "llmfleet.scan", "exit_code": 0, "seconds": 2.4}
    {"entry_type": "init", "garak_version": "0.17.1", "start_time": "...", "run": "..."}
    {"entry_type": "start_run setup", "transient.active_probes": ["probes.dan.Dan_11_0", ...]}
    {"entry_type": "eval", "probe": "dan.Dan_11_0", "detector": "dan.DAN", "passed": 1,
     "fails": 0, "nones": 0, "total_evaluated": 1}
    {"entry_type": "completion", "end_time": "...", "run": "..."}

The first record is the script's own: garak's exit code, the scan's duration and, when the
scan failed (no report, a crash, the timeout), `error` with the end of garak's output. When
the records do not fit, they are reduced step by step: eval records lose `fails` and `nones`,
`init` and `completion` lose their times and run id; then the active probes are listed only
when they have no eval record (`llmfleet.probes_without_eval` in the setup record); last, eval
records are left out from the best pass rate down, and the first record says `truncated` and
how many (`omitted_evals`): every eval left out passes at least as well as every one kept.

Exit code: 0 when garak exited 0 and its report is complete (it has its `completion` record),
1 otherwise. A scan whose probes failed still exits 0: the verdict is the operator's. On
SIGTERM (the Job's deadline, a deletion) garak is stopped and the summary still written.

Settings (environment; the operator renders them, a test points them at temporary paths):
LLMFLEET_SCAN_CONFIG_DIR, LLMFLEET_SCAN_WORK_DIR, LLMFLEET_SCAN_TERMINATION_LOG,
LLMFLEET_SCAN_TIMEOUT_SECONDS.
"""

from __future__ import annotations

import collections
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterable
from pathlib import Path
from types import FrameType
from typing import IO, Any

CONFIG_DIR = "/etc/llmfleet/scan"
WORK_DIR = "/tmp/scan"  # noqa: S108 - the pod's emptyDir: the root filesystem is read-only
TERMINATION_LOG = "/dev/termination-log"
CONFIG_FILE = "garak.yaml"
SCRIPT_FILE = "scan.py"
# garak writes <work dir>/report/scan.report.jsonl (garak.yaml sets the directory and prefix).
REPORT_SUBDIR = "report"
REPORT_PREFIX = "scan"
DEFAULT_TIMEOUT_SECONDS = 1800

ENV_CONFIG_DIR = "LLMFLEET_SCAN_CONFIG_DIR"
ENV_WORK_DIR = "LLMFLEET_SCAN_WORK_DIR"
ENV_TERMINATION_LOG = "LLMFLEET_SCAN_TERMINATION_LOG"
ENV_TIMEOUT = "LLMFLEET_SCAN_TIMEOUT_SECONDS"

# Kubernetes keeps at most 4096 bytes of a container's termination message.
MAX_SUMMARY_BYTES = 4096
# The end of garak's output kept in an error.
MAX_ERROR_BYTES = 1200
OUTPUT_TAIL_LINES = 25
# From SIGTERM to SIGKILL for garak (Kubernetes gives the pod 30 s by default).
GRACE_SECONDS = 10

SCRIPT_ENTRY = "llmfleet.scan"
SETUP_ENTRY = "start_run setup"
ACTIVE_PROBES = "transient.active_probes"
PROBES_WITHOUT_EVAL = "llmfleet.probes_without_eval"
PROBES_WITHOUT_EVAL_OMITTED = "llmfleet.probes_without_eval_omitted"
EVAL_FIELDS = ("probe", "detector", "passed", "fails", "nones", "total_evaluated")
COMPACT_EVAL_FIELDS = ("probe", "detector", "passed", "total_evaluated")
PROBE_PREFIX = "probes."

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def report_path(work_dir: Path) -> Path:
    return work_dir / REPORT_SUBDIR / f"{REPORT_PREFIX}.report.jsonl"


class _Records:
    """The records of a garak report (or of a summary) that a verdict needs."""

    def __init__(self) -> None:
        self.init: dict[str, Any] | None = None
        self.active: list[str] | None = None
        self.evals: list[dict[str, Any]] = []
        self.completion: dict[str, Any] | None = None
        self.unreadable = 0

    @classmethod
    def read(cls, lines: Iterable[str]) -> _Records:
        records = cls()
        for raw in lines:
            line = raw.strip()
            # Attempt records (every prompt and answer) are most of a report: skip them unread.
            if not line or line.startswith('{"entry_type": "attempt"'):
                continue
            try:
                record = json.loads(line)
            except ValueError:
                records.unreadable += 1  # e.g. the last line of a report garak was killed writing
                continue
            if isinstance(record, dict):
                records.add(record)
        return records

    def add(self, record: dict[str, Any]) -> None:
        kind = record.get("entry_type")
        if kind == "init":
            self.init = {
                k: record[k] for k in ("garak_version", "start_time", "run") if k in record
            }
        elif kind == SETUP_ENTRY and isinstance(record.get(ACTIVE_PROBES), list):
            self.active = [str(name) for name in record[ACTIVE_PROBES]]
        elif kind == "eval":
            self.evals.append({k: record[k] for k in EVAL_FIELDS if k in record})
        elif kind == "completion":
            self.completion = {k: record[k] for k in ("end_time", "run") if k in record}

    def probes_without_eval(self) -> list[str]:
        evaluated = {str(e.get("probe")) for e in self.evals}
        return [p for p in self.active or [] if p.removeprefix(PROBE_PREFIX) not in evaluated]


def _pass_rate(record: dict[str, Any]) -> float:
    """For ordering: evals with nothing evaluated first, then the lowest pass rate."""
    total = record.get("total_evaluated")
    passed = record.get("passed")
    if not isinstance(total, int) or not isinstance(passed, int) or total <= 0:
        return -1.0
    return passed / total


def _dump(records: list[dict[str, Any]]) -> str:
    return "".join(
        json.dumps(r, ensure_ascii=False, separators=(", ", ": ")) + "\n" for r in records
    )


def _size(records: list[dict[str, Any]]) -> int:
    return len(_dump(records).encode())


def bounded(text: str, limit: int) -> str:
    """The end of `text` in at most `limit` UTF-8 bytes (the end of an output says most)."""
    data = text.encode()
    if len(data) <= limit:
        return text
    return "..." + data[-(limit - 3) :].decode(errors="ignore")


def summarize(
    lines: Iterable[str],
    *,
    exit_code: int | None = None,
    seconds: float | None = None,
    error: str | None = None,
    limit: int = MAX_SUMMARY_BYTES,
) -> str:
    """The summary (JSON lines, at most `limit` bytes) of a garak report's lines."""
    return _summarize(
        _Records.read(lines), exit_code=exit_code, seconds=seconds, error=error, limit=limit
    )


def _summarize(
    found: _Records,
    *,
    exit_code: int | None = None,
    seconds: float | None = None,
    error: str | None = None,
    limit: int = MAX_SUMMARY_BYTES,
) -> str:
    head: dict[str, Any] = {"entry_type": SCRIPT_ENTRY, "exit_code": exit_code}
    if seconds is not None:
        head["seconds"] = round(seconds, 1)
    if found.unreadable:
        head["unreadable_lines"] = found.unreadable
    if error:
        head["error"] = bounded(error, MAX_ERROR_BYTES)

    def records(
        *, detailed: bool, list_active: bool, evals: list[dict[str, Any]]
    ) -> list[dict[str, Any]]:
        out = [head]
        if found.init is not None:
            init = {"entry_type": "init", **found.init}
            out.append(
                init
                if detailed
                else {k: init[k] for k in ("entry_type", "garak_version") if k in init}
            )
        if found.active is not None:
            if list_active:
                out.append({"entry_type": SETUP_ENTRY, ACTIVE_PROBES: found.active})
            else:
                out.append(
                    {"entry_type": SETUP_ENTRY, PROBES_WITHOUT_EVAL: found.probes_without_eval()}
                )
        fields = EVAL_FIELDS if detailed else COMPACT_EVAL_FIELDS
        out.extend({"entry_type": "eval", **{k: e[k] for k in fields if k in e}} for e in evals)
        if found.completion is not None:
            out.append({"entry_type": "completion", **(found.completion if detailed else {})})
        return out

    for detailed, list_active in ((True, True), (False, True), (False, False)):
        candidate = records(detailed=detailed, list_active=list_active, evals=found.evals)
        if _size(candidate) <= limit:
            return _dump(candidate)

    # Too many evals: keep the worst ones (an eval left out passes at least as well as every
    # one kept, so a verdict from the kept ones stands), and say how many are left out.
    kept = sorted(found.evals, key=_pass_rate)
    head["truncated"] = True
    head["omitted_evals"] = 0
    candidate = records(detailed=False, list_active=False, evals=kept)
    while _size(candidate) > limit and kept:
        kept.pop()
        head["omitted_evals"] += 1
        candidate = records(detailed=False, list_active=False, evals=kept)
    setup = next((r for r in candidate if r["entry_type"] == SETUP_ENTRY), None)
    while _size(candidate) > limit and setup is not None and setup[PROBES_WITHOUT_EVAL]:
        setup[PROBES_WITHOUT_EVAL].pop()
        setup[PROBES_WITHOUT_EVAL_OMITTED] = setup.get(PROBES_WITHOUT_EVAL_OMITTED, 0) + 1
    if _size(candidate) > limit and "error" in head:
        head["error"] = bounded(head["error"], 200)
    return _dump(candidate)


class _Garak:
    """garak as a child process: its output streamed to ours, the end of it kept."""

    def __init__(self, argv: list[str]) -> None:
        self.tail: collections.deque[str] = collections.deque(maxlen=OUTPUT_TAIL_LINES)
        self.process = subprocess.Popen(
            argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
        )
        self.reader = threading.Thread(target=self._relay, args=(self.process.stdout,), daemon=True)
        self.reader.start()
        self.stopping: float | None = None

    def _relay(self, stream: IO[bytes] | None) -> None:
        if stream is None:
            return
        for raw in stream:
            sys.stdout.buffer.write(raw)
            sys.stdout.flush()
            text = _ANSI.sub("", raw.decode(errors="replace")).rstrip()
            # Progress bars redraw with carriage returns: keep what the line ended as.
            text = text.rsplit("\r", 1)[-1].strip()
            if text:
                self.tail.append(text)

    def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace period."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=GRACE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def terminate(self) -> None:
        """From a signal handler: ask garak to stop; `wait` kills it after the grace period."""
        if self.stopping is None:
            self.stopping = time.monotonic()
        self.process.terminate()

    def wait(self, timeout: float) -> int | None:
        """garak's exit code, or None when it ran out of time (it is stopped)."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                code = self.process.wait(timeout=0.5)
            except subprocess.TimeoutExpired:
                now = time.monotonic()
                if self.stopping is not None and now > self.stopping + GRACE_SECONDS:
                    self.process.kill()
                if now > deadline:
                    self.stop()
                    self.reader.join(timeout=5)
                    return None
                continue
            self.reader.join(timeout=5)
            return code

    def output_tail(self) -> str:
        return "\n".join(self.tail)


def _setting(name: str, default: str) -> str:
    return os.environ.get(name) or default


def main() -> int:
    config_dir = Path(_setting(ENV_CONFIG_DIR, CONFIG_DIR))
    work_dir = Path(_setting(ENV_WORK_DIR, WORK_DIR))
    termination_log = Path(_setting(ENV_TERMINATION_LOG, TERMINATION_LOG))
    try:
        timeout = float(_setting(ENV_TIMEOUT, str(DEFAULT_TIMEOUT_SECONDS)))
    except ValueError:
        timeout = DEFAULT_TIMEOUT_SECONDS
    report = report_path(work_dir)
    # A restarted pod keeps its emptyDir: never read the report of an earlier attempt.
    shutil.rmtree(report.parent, ignore_errors=True)
    report.parent.mkdir(parents=True, exist_ok=True)

    started = time.monotonic()
    argv = [sys.executable, "-m", "garak", "--config", str(config_dir / CONFIG_FILE)]
    stopped_by: list[int] = []
    running: list[_Garak] = []

    def forward(signum: int, _: FrameType | None) -> None:
        # The Job's deadline or a deletion: stop garak, still write what it reported.
        stopped_by.append(signum)
        for child in running:
            child.terminate()

    signal.signal(signal.SIGTERM, forward)
    garak = _Garak(argv)
    running.append(garak)
    if stopped_by:  # stopped while garak was starting
        garak.terminate()
    exit_code = garak.wait(timeout)
    seconds = time.monotonic() - started

    problems: list[str] = []
    if stopped_by:
        problems.append(f"the scan was stopped (signal {stopped_by[0]}) after {seconds:.0f} s")
    elif exit_code is None:
        problems.append(f"garak did not finish within {timeout:g} s and was stopped")
    elif exit_code != 0:
        problems.append(f"garak exited with code {exit_code}")
    found = _Records()
    if report.is_file():
        with report.open(encoding="utf-8", errors="replace") as handle:
            found = _Records.read(handle)
        if found.completion is None:
            problems.append("garak's report has no completion record: the run was aborted")
    else:
        problems.append(f"garak wrote no report ({report.name})")
    error = None
    if problems:
        error = "; ".join(problems) + "; garak's output ends with:\n" + garak.output_tail()
    summary = _summarize(found, exit_code=exit_code, seconds=seconds, error=error)
    try:
        termination_log.write_text(summary, encoding="utf-8")
    except OSError as failure:
        sys.stderr.write(f"llmfleet scan: cannot write {termination_log}: {failure}\n")
    sys.stdout.write("llmfleet scan summary:\n" + summary)
    sys.stdout.flush()
    return 0 if not problems else 1


if __name__ == "__main__":
    sys.exit(main())
