"""A real Prometheus on 127.0.0.1 for the tests: static scrape targets with the labels a test
attaches, a 1 s scrape and rule interval, queries through the HTTP API, and stop/restart on
the same port and data. The binary comes from `make prometheus` (hack/install-prometheus.sh)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import yaml

from localfleet import processes
from localfleet.ports import free_port

JOB = "models"  # the `job` label of every target


@dataclass(frozen=True)
class Target:
    """What Prometheus scrapes: `address` is host:port; `labels` go on each of its series."""

    address: str
    metrics_path: str = "/metrics"
    labels: Mapping[str, str] = field(default_factory=dict)


class Sample(NamedTuple):
    labels: dict[str, str]
    value: float


class QueryError(RuntimeError):
    """Prometheus answered and refused the request (bad expression, failed reload)."""


class LocalPrometheus:
    def __init__(self, workdir: Path, *, binary: str = "prometheus") -> None:
        self.workdir = workdir
        self.binary = binary
        self.port: int | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self.targets: list[Target] = []
        self.rule_files: list[Path] = []
        self.alertmanagers: list[str] = []

    @property
    def config_file(self) -> Path:
        return self.workdir / "prometheus.yml"

    @property
    def log(self) -> Path:
        return self.workdir / "prometheus.log"

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("Prometheus was never started")
        return f"http://127.0.0.1:{self.port}"

    def start(
        self,
        targets: Sequence[Target],
        *,
        rule_files: Sequence[Path] = (),
        alertmanagers: Sequence[str] = (),
        timeout: float = 30,
    ) -> None:
        """Starts Prometheus with these targets (on a free port, kept for `restart`) and
        returns once it is ready and knows them; firing alerts go to `alertmanagers`
        (host:port)."""
        if self.process is not None and self.process.poll() is None:
            raise RuntimeError(f"Prometheus is already running at {self.url}")
        executable = shutil.which(self.binary)
        if executable is None:
            raise RuntimeError(f"{self.binary} is not on PATH; run `make prometheus`")
        self.targets, self.rule_files = list(targets), list(rule_files)
        self.alertmanagers = list(alertmanagers)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_config()
        if self.port is None:
            self.port = free_port()
        command = [
            executable,
            f"--config.file={self.config_file}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{self.port}",
            "--web.enable-lifecycle",
        ]
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        try:
            self._wait(self._ready, "to be ready", timeout)
            self._wait_for_targets(timeout)
        except BaseException:
            self.stop()
            raise

    def set_targets(
        self,
        targets: Sequence[Target],
        *,
        rule_files: Sequence[Path] | None = None,
        timeout: float = 30,
    ) -> None:
        """Rewrites the configuration (rule files unchanged unless given), reloads it and
        returns once Prometheus scrapes exactly these targets."""
        self.targets = list(targets)
        if rule_files is not None:
            self.rule_files = list(rule_files)
        self._write_config()
        self.reload(timeout=timeout)

    def reload(self, *, timeout: float = 30) -> None:
        """Reloads the configuration file and the rule files (POST /-/reload)."""
        request = urllib.request.Request(f"{self.url}/-/reload", method="POST")  # noqa: S310 - loopback
        try:
            with processes.LOOPBACK.open(request, timeout=timeout):
                pass
        except urllib.error.HTTPError as error:
            raise QueryError(f"reload failed: {error.read().decode(errors='replace')}") from error
        self._wait_for_targets(timeout)

    def api(self, path: str, **params: str) -> Any:
        """GET an HTTP API path ("/api/v1/alerts"); returns its `data`. Raises ConnectionError
        when Prometheus does not answer, QueryError when it refuses."""
        url = f"{self.url}{path}"
        if params:
            url += "?" + urllib.parse.urlencode(params)
        try:
            with processes.LOOPBACK.open(url, timeout=10) as response:
                body = json.load(response)
        except urllib.error.HTTPError as error:
            raise QueryError(f"{path}: {error.read().decode(errors='replace')}") from error
        except urllib.error.URLError as error:
            raise ConnectionError(f"Prometheus at {self.url} does not answer: {error}") from error
        return body["data"]

    def query(self, expr: str, *, at: float | None = None) -> list[Sample]:
        """An instant query, now or at a Unix time: one Sample per series (a scalar is one
        Sample with no labels)."""
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        data = self.api("/api/v1/query", **params)
        if data["resultType"] == "vector":
            return [Sample(item["metric"], float(item["value"][1])) for item in data["result"]]
        if data["resultType"] == "scalar":
            return [Sample({}, float(data["result"][1]))]
        raise QueryError(f"{expr!r} gives a {data['resultType']}, not an instant vector")

    def wait_for(
        self,
        expr: str,
        predicate: Callable[[list[Sample]], bool],
        *,
        timeout: float = 15,
    ) -> list[Sample]:
        """Queries until the result satisfies `predicate` (while Prometheus does not answer,
        keeps trying) and returns it; AssertionError with the last result after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            last: list[Sample] | Exception
            try:
                last = result = self.query(expr)
                if predicate(result):
                    return result
            except ConnectionError as error:
                last = error
            if time.monotonic() >= deadline:
                raise AssertionError(f"{expr!r} after {timeout:.0f}s: {last!r}")
            time.sleep(0.25)

    def stop(self, *, timeout: float = 20) -> None:
        """SIGTERM (Prometheus closes its data cleanly), SIGKILL after `timeout`."""
        processes.stop(self.process, timeout)

    def restart(self, *, timeout: float = 30) -> None:
        """Stops and starts again: same port, targets, rules and data."""
        self.stop()
        self.start(
            self.targets,
            rule_files=self.rule_files,
            alertmanagers=self.alertmanagers,
            timeout=timeout,
        )

    def __enter__(self) -> LocalPrometheus:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def _write_config(self) -> None:
        # One job: a target removed by a reload gets staleness markers, so its series end at
        # once (a removed job's series would linger for the 5 minute lookback).
        config: dict[str, Any] = {
            "global": {
                "scrape_interval": "1s",
                "scrape_timeout": "1s",
                "evaluation_interval": "1s",
            },
            "rule_files": [str(path) for path in self.rule_files],
            "alerting": {
                "alertmanagers": [{"static_configs": [{"targets": self.alertmanagers}]}]
                if self.alertmanagers
                else []
            },
            "scrape_configs": [
                {
                    "job_name": JOB,
                    "static_configs": [
                        {
                            "targets": [target.address],
                            "labels": {**target.labels, "__metrics_path__": target.metrics_path},
                        }
                        for target in self.targets
                    ],
                }
            ],
        }
        self.config_file.write_text(yaml.safe_dump(config, sort_keys=False))

    def _ready(self) -> bool:
        if self.process is None or self.process.poll() is not None:
            code = None if self.process is None else self.process.returncode
            raise RuntimeError(
                f"prometheus exited ({code}): {self.log.read_text(errors='replace')[-3000:]}"
            )
        return processes.answers(f"{self.url}/-/ready")

    def _wait_for_targets(self, timeout: float) -> None:
        """Prometheus hands new targets to its scrapers on a 5 s tick after a (re)load."""
        wanted = {_discovered(target) for target in self.targets}

        def known() -> bool:
            active = self.api("/api/v1/targets", state="active")["activeTargets"]
            return {frozenset(t["discoveredLabels"].items()) for t in active} == wanted

        addresses = ", ".join(target.address for target in self.targets) or "nothing"
        self._wait(known, f"to scrape {addresses}", timeout)

    def _wait(self, probe: Callable[[], bool], what: str, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not probe():
            if time.monotonic() >= deadline:
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s waiting for Prometheus at {self.url} {what} "
                    f"(log: {self.log})"
                )
            time.sleep(0.1)


def _discovered(target: Target) -> frozenset[tuple[str, str]]:
    """The labels Prometheus lists for a target before relabelling."""
    labels = {
        "job": JOB,
        **target.labels,
        "__address__": target.address,
        "__metrics_path__": target.metrics_path,
        "__scheme__": "http",
        "__scrape_interval__": "1s",
        "__scrape_timeout__": "1s",
    }
    return frozenset(labels.items())
