"""Stop and start single control-plane processes of a local cluster (failure tests).

kwokctl's binary runtime runs each component as a process with a pid file in the cluster's
work directory; a restarted component gets the same command line, directory and environment,
and its new pid goes into that file, so `make cluster-down` still stops it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from localfleet.paths import kwok_clusters_dir
from localfleet.topology import ClusterSpec


@dataclass(frozen=True)
class Stopped:
    """What it takes to start a stopped component again."""

    pid_file: Path
    argv: list[str]
    cwd: str
    env: dict[str, str]
    log: Path


def work_dir(cluster: ClusterSpec) -> Path:
    return kwok_clusters_dir() / cluster.name


def _read_process(pid: int) -> tuple[list[str], str, dict[str, str]]:
    proc = Path(f"/proc/{pid}")
    argv = [a.decode() for a in (proc / "cmdline").read_bytes().split(b"\0") if a]
    env = dict(
        item.decode().split("=", 1)
        for item in (proc / "environ").read_bytes().split(b"\0")
        if b"=" in item
    )
    return argv, str((proc / "cwd").readlink()), env


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def running_by_component(cluster: ClusterSpec) -> dict[str, bool]:
    """Whether each component's process runs; kwokctl does not restart one that exits."""
    return {
        pid_file.stem: _alive(int(pid_file.read_text().strip() or 0))
        for pid_file in sorted((work_dir(cluster) / "pids").glob("*.pid"))
    }


def snapshot(cluster: ClusterSpec, component: str) -> Stopped:
    """What it takes to start a running component again, should it stop."""
    pid_file = work_dir(cluster) / "pids" / f"{component}.pid"
    argv, cwd, env = _read_process(int(pid_file.read_text().strip()))
    return Stopped(pid_file, argv, cwd, env, work_dir(cluster) / "logs" / f"{component}.log")


def running(stopped: Stopped) -> bool:
    return _alive(int(stopped.pid_file.read_text().strip()))


def stop(cluster: ClusterSpec, component: str, timeout: float = 30) -> Stopped:
    stopped = snapshot(cluster, component)
    pid = int(stopped.pid_file.read_text().strip())
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)
    return stopped


def revive(snapshots: list[Stopped]) -> list[str]:
    """Starts again what exited, as a node's supervisor would: the controller manager and the
    scheduler exit when they cannot renew their leader lease while the API server is away."""
    revived = []
    for stopped in snapshots:
        if not running(stopped):
            start(stopped)
            revived.append(stopped.pid_file.stem)
    return revived


def start(stopped: Stopped) -> int:
    with stopped.log.open("ab") as log:
        process = subprocess.Popen(
            stopped.argv,
            cwd=stopped.cwd,
            env=stopped.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # outlives the test run, like kwokctl's own processes
        )
    stopped.pid_file.write_text(str(process.pid))
    return process.pid
