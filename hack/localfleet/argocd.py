"""Argo CD on 127.0.0.1 for the live GitOps test: redis, the repo-server, the
application-controller and the applicationset-controller as local processes against a
cluster given by its kubeconfig, with llmfleet's Lua health checks in argocd-cm.

The binary comes from hack/build-argocd.sh (`make argocd`): one multi-call `argocd-lite`,
Argo CD's CRDs next to it; redis-server is Debian's. Every listener is on a free loopback
port. Applications read `file://` git repositories (`GitRepo`); member clusters are Argo CD
cluster Secrets (`register_cluster`).
"""

from __future__ import annotations

import base64
import contextlib
import functools
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from argocd_cm_patch import patch as health_checks_patch
from localfleet import processes
from localfleet.paths import HACK_DIR
from localfleet.ports import free_port
from localfleet.seed import install_crds

GROUP, VERSION = "argoproj.io", "v1alpha1"
FIELD_MANAGER = "llmfleet-argocd"
REFRESH_ANNOTATION = "argocd.argoproj.io/refresh"
SECRET_TYPE_LABEL = "argocd.argoproj.io/secret-type"  # noqa: S105 - a label, no secret
IN_CLUSTER = "https://kubernetes.default.svc"  # the cluster Argo CD runs in (the kubeconfig's)
NOT_FOUND, CONFLICT = 404, 409
# Requests to 127.0.0.1 never go through an HTTP proxy from the environment.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))

Application = dict[str, Any]


def bin_dir() -> Path:
    """The cache directory of argocd-lite and the CRDs (which may not be built yet)."""
    return processes.cache_dir("build-argocd.sh")


def ensure_built() -> Path:
    """Builds argocd-lite if the cache is cold (15-25 minutes on 2 cores), installs
    redis-server if it is missing (needs root), and returns the binary directory."""
    result = subprocess.run(
        ["bash", str(HACK_DIR / "build-argocd.sh")], stdout=subprocess.PIPE, text=True, check=True
    )
    return Path(result.stdout.strip().splitlines()[-1])


def is_built() -> bool:
    return (bin_dir() / ".complete").is_file() and shutil.which("redis-server") is not None


@dataclass(frozen=True)
class Ports:
    redis: int
    repo_server: int
    repo_server_metrics: int
    controller_metrics: int
    appset_metrics: int
    appset_probe: int
    appset_webhook: int

    @classmethod
    def free(cls) -> Ports:
        taken: set[int] = set()
        return cls(*(free_port(taken) for _ in range(7)))


@dataclass
class _Process:
    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None

    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None


class LocalArgoCD:
    """Argo CD's controllers for one cluster (the kubeconfig's, `https://kubernetes.default.svc`
    inside Argo CD). `app_resync` is the application controller's periodic refresh in seconds
    (Argo CD's default is 120); status changes that change a resource's health are seen at
    once anyway, through the controller's watches."""

    def __init__(
        self,
        kubeconfig: Path,
        workdir: Path,
        *,
        namespace: str = "argocd",
        binaries: Path | None = None,
        redis_binary: str = "redis-server",
        app_resync: int = 10,
        log_level: str = "info",
        extra_settings: Mapping[str, str] | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.workdir = workdir
        self.namespace = namespace
        self.binaries = binaries
        self.redis_binary = redis_binary
        self.app_resync = app_resync
        self.log_level = log_level
        self.extra_settings = dict(extra_settings or {})
        self.ports: Ports | None = None
        self.processes: list[_Process] = []
        self.timings: dict[str, float] = {}
        self._api: client.ApiClient | None = None
        self._socket_dir: str | None = None

    # -- lifecycle -------------------------------------------------------------------------

    @property
    def api(self) -> client.ApiClient:
        if self._api is None:
            self._api = config.new_client_from_config(  # type: ignore[no-untyped-call]
                config_file=str(self.kubeconfig)
            )
        return self._api

    def logs(self) -> dict[str, Path]:
        """Each process's log file, by process name."""
        return {process.name: process.log for process in self.processes}

    def start(self, *, timeout: float = 120) -> None:
        """Installs Argo CD's CRDs and settings in the cluster, starts redis and the three
        Argo CD processes and returns once each answers its health check."""
        if any(process.running() for process in self.processes):
            raise RuntimeError("Argo CD is already running")
        started = time.monotonic()
        binaries = self.binaries or bin_dir()
        lite = binaries / "argocd-lite"
        redis = shutil.which(self.redis_binary)
        if not lite.is_file():
            raise RuntimeError(f"{lite} is missing; run `make argocd` (hack/build-argocd.sh)")
        if redis is None:
            raise RuntimeError(f"{self.redis_binary} is not on PATH; run `make argocd` as root")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.install(binaries / "crds")
        self.timings["install"] = time.monotonic() - started
        self.ports = ports = Ports.free()
        self.processes = self._processes(lite, redis, ports)
        try:
            for process in self.processes:
                self._spawn(process)
            self._wait(self._redis_ready, "redis to answer PING", timeout, started)
            for name, port, path in (
                ("argocd-repo-server", ports.repo_server_metrics, "/healthz?full=true"),
                ("argocd-application-controller", ports.controller_metrics, "/healthz"),
                ("argocd-applicationset-controller", ports.appset_metrics, "/metrics"),
            ):
                probe = functools.partial(self._http_ok, port, path)
                self._wait(probe, f"{name} to be healthy", timeout, started)
                self.timings[name] = time.monotonic() - started
            # Its probe endpoint has no checks registered (404): its workers start once the
            # caches are synced.
            appset = self.processes[-1]
            self._wait(
                lambda: "Starting workers" in appset.log.read_text(errors="replace"),
                "argocd-applicationset-controller to start its workers",
                timeout,
                started,
            )
        except BaseException:
            self.stop()
            raise
        self.timings["ready"] = time.monotonic() - started

    def stop(self, *, timeout: float = 15) -> None:
        """SIGTERM to each process (and the git processes the repo-server started), in
        reverse order; SIGKILL after `timeout`. Objects in the cluster stay."""
        for process in reversed(self.processes):
            popen = process.popen
            if popen is None or popen.poll() is not None:
                continue
            _signal_group(popen.pid, signal.SIGTERM)
            try:
                popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                _signal_group(popen.pid, signal.SIGKILL)
                popen.wait()
            _signal_group(popen.pid, signal.SIGKILL)  # children left behind, if any
        if self._socket_dir is not None:
            shutil.rmtree(self._socket_dir, ignore_errors=True)
            self._socket_dir = None

    def __enter__(self) -> LocalArgoCD:
        self.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def install(self, crds: Path) -> None:
        """The namespace, Argo CD's CRDs, argocd-cm (llmfleet's health checks),
        argocd-rbac-cm, argocd-secret and the `default` AppProject (which Argo CD's API
        server would create). Idempotent."""
        core = client.CoreV1Api(self.api)
        try:
            core.create_namespace(
                client.V1Namespace(metadata=client.V1ObjectMeta(name=self.namespace))
            )
        except ApiException as error:
            if error.status != CONFLICT:
                raise
        install_crds(self.api, crds)
        part_of = {"app.kubernetes.io/part-of": "argocd"}
        settings = {**health_checks_patch()["data"], **self.extra_settings}
        for name, data in (("argocd-cm", settings), ("argocd-rbac-cm", {})):
            manifest = {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "metadata": {"name": name, "namespace": self.namespace, "labels": part_of},
                "data": data,
            }
            core.patch_namespaced_config_map(name, self.namespace, manifest, **_APPLY)
        try:
            secret = client.V1Secret(
                metadata=client.V1ObjectMeta(name="argocd-secret", labels=part_of),
                string_data={"server.secretkey": secrets.token_urlsafe(32)},
            )
            core.create_namespaced_secret(self.namespace, secret)
        except ApiException as error:
            if error.status != CONFLICT:
                raise
        self.apply(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "AppProject",
                "metadata": {"name": "default"},
                "spec": {
                    "sourceRepos": ["*"],
                    "destinations": [{"server": "*", "namespace": "*"}],
                    "clusterResourceWhitelist": [{"group": "*", "kind": "*"}],
                },
            }
        )

    # -- Argo CD objects ---------------------------------------------------------------------

    def apply(self, manifest: Mapping[str, Any]) -> dict[str, Any]:
        """Server-side applies an Application, ApplicationSet or AppProject into Argo CD's
        namespace; returns the object."""
        doc = json.loads(json.dumps(manifest))
        doc.setdefault("metadata", {})["namespace"] = self.namespace
        objects = client.CustomObjectsApi(self.api)
        plural = _PLURALS[doc["kind"]]
        name = doc["metadata"]["name"]
        result = objects.patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, plural, name, doc, **_APPLY
        )
        if result is None:  # 201 Created: the client reads a body for 200 only
            result = objects.get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural, name
            )
        return _as_dict(result)

    def application(self, name: str) -> Application | None:
        try:
            result = client.CustomObjectsApi(self.api).get_namespaced_custom_object(
                GROUP, VERSION, self.namespace, "applications", name
            )
        except ApiException as error:
            if error.status == NOT_FOUND:
                return None
            raise
        return _as_dict(result)

    def applications(self, label_selector: str | None = None) -> list[Application]:
        listing = client.CustomObjectsApi(self.api).list_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "applications", label_selector=label_selector
        )
        return [_as_dict(item) for item in _as_dict(listing)["items"]]

    def wait_for_application(
        self,
        name: str,
        predicate: Callable[[Application], bool],
        *,
        timeout: float = 60,
    ) -> Application:
        """Reads the Application until `predicate` holds and returns it; AssertionError with
        its sync, health and per-resource state after `timeout`."""
        deadline = time.monotonic() + timeout
        while True:
            app = self.application(name)
            if app is not None and predicate(app):
                return app
            self._check_processes()
            if time.monotonic() >= deadline:
                state = "missing" if app is None else summary(app)
                raise AssertionError(f"Application {name} after {timeout:.0f}s: {state}")
            time.sleep(0.25)

    def refresh(self, name: str, *, hard: bool = False) -> None:
        """Asks the controller to compare the Application with git and the cluster again
        (`hard`: regenerate the manifests too, bypassing the repo-server's cache)."""
        body = {"metadata": {"annotations": {REFRESH_ANNOTATION: "hard" if hard else "normal"}}}
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "applications", name, body
        )

    def sync(self, name: str, *, revision: str | None = None, prune: bool = False) -> None:
        """Starts a sync of an Application without an automated sync policy, as
        `argocd app sync` does: by setting its `operation`."""
        sync: dict[str, Any] = {"prune": prune, "syncStrategy": {"hook": {}}}
        if revision is not None:
            sync["revision"] = revision
        body = {"operation": {"sync": sync, "initiatedBy": {"username": FIELD_MANAGER}}}
        client.CustomObjectsApi(self.api).patch_namespaced_custom_object(
            GROUP, VERSION, self.namespace, "applications", name, body
        )

    def delete_all(self, *, timeout: float = 60) -> None:
        """Deletes every ApplicationSet and Application and waits until none is left. Call it
        while the controllers run: an Application with Argo CD's resources finalizer (those an
        ApplicationSet generates have it) is only gone once the controller has deleted what
        it synced."""
        objects = client.CustomObjectsApi(self.api)
        for plural in ("applicationsets", "applications"):
            objects.delete_collection_namespaced_custom_object(
                GROUP, VERSION, self.namespace, plural
            )
        deadline = time.monotonic() + timeout
        while True:
            left = [
                f"{plural}/{item['metadata']['name']}"
                for plural in ("applicationsets", "applications")
                for item in _as_dict(
                    objects.list_namespaced_custom_object(GROUP, VERSION, self.namespace, plural)
                )["items"]
            ]
            if not left:
                return
            self._check_processes()
            if time.monotonic() >= deadline:
                raise AssertionError(f"still there after {timeout:.0f}s: {', '.join(left)}")
            time.sleep(0.25)

    def register_cluster(
        self,
        name: str,
        kubeconfig: Path,
        *,
        labels: Mapping[str, str] | None = None,
        server: str | None = None,
    ) -> dict[str, Any]:
        """Creates or replaces the Argo CD cluster Secret `name` for the cluster of
        `kubeconfig` (its current context); returns the manifest."""
        manifest = cluster_secret(
            name, kubeconfig, namespace=self.namespace, labels=labels, server=server
        )
        core = client.CoreV1Api(self.api)
        core.patch_namespaced_secret(name, self.namespace, manifest, **_APPLY)
        return manifest

    # -- internals -----------------------------------------------------------------------------

    def _processes(self, lite: Path, redis: str, ports: Ports) -> list[_Process]:
        tmp = self.workdir / "tmp"
        for directory in (tmp, self.workdir / "redis", self.workdir / "plugins"):
            directory.mkdir(parents=True, exist_ok=True)
        # A unix socket's path has a 107 byte limit: a short directory of its own.
        self._socket_dir = tempfile.mkdtemp(prefix="argocd-")
        env = {
            **os.environ,
            "ARGOCD_FAKE_IN_CLUSTER": "true",
            "ARGOCD_GPG_ENABLED": "false",
            "ARGOCD_GNUPGHOME": str(self.workdir / "gnupg"),
            "ARGOCD_ASK_PASS_SOCK": str(Path(self._socket_dir) / "askpass.sock"),
            "ARGOCD_PLUGINSOCKFILEPATH": str(self.workdir / "plugins"),
            "ARGOCD_SSH_DATA_PATH": str(self.workdir / "ssh"),
            "ARGOCD_TLS_DATA_PATH": str(self.workdir / "tls"),
            "ARGOCD_CONTROLLER_REPLICAS": "1",
            "ARGOCD_CONTROLLER_SHARD": "0",
            "ARGOCD_APPLICATION_CONTROLLER_METRICS_LISTEN_ADDRESS": "127.0.0.1",
            "TMPDIR": str(tmp),
            # The repo-server runs git-verify-wrapper.sh, installed next to argocd-lite.
            "PATH": os.pathsep.join([str(lite.parent), os.environ.get("PATH", os.defpath)]),
            # The applicationset-controller's manager reads KUBECONFIG, not --kubeconfig.
            "KUBECONFIG": str(self.kubeconfig),
        }
        redis_address = f"127.0.0.1:{ports.redis}"
        repo_server = f"127.0.0.1:{ports.repo_server}"
        logging = ["--logformat", "text", "--loglevel", self.log_level]
        kube = ["--kubeconfig", str(self.kubeconfig), "--namespace", self.namespace]

        def process(name: str, argv: list[str]) -> _Process:
            return _Process(name, argv, env, self.workdir / f"{name}.log")

        # fmt: off
        redis_argv = [
            redis, "--port", str(ports.redis), "--bind", "127.0.0.1",
            "--save", "", "--appendonly", "no", "--dir", str(self.workdir / "redis"),
        ]
        repo_server_argv = [
            str(lite), "argocd-repo-server", *logging,
            "--address", "127.0.0.1", "--port", str(ports.repo_server),
            "--metrics-address", "127.0.0.1", "--metrics-port", str(ports.repo_server_metrics),
            # Plain gRPC on loopback; the client CA default (a pod's mount) conflicts with it.
            "--disable-tls", "--client-ca-path", "", "--redis", redis_address,
            # git's answer for a branch is cached this long (default 3 m): a commit the test
            # makes is seen at the next refresh.
            "--revision-cache-expiration", "1s",
        ]
        controller_argv = [
            str(lite), "argocd-application-controller", *logging, *kube,
            "--repo-server", repo_server, "--repo-server-plaintext",
            "--redis", redis_address,
            "--metrics-port", str(ports.controller_metrics),
            "--app-resync", str(self.app_resync), "--app-resync-jitter", "0",
            # Argo CD 3 keeps per-resource health out of .status.resources by default.
            "--persist-resource-health",
            "--self-heal-timeout-seconds", "0", "--self-heal-backoff-timeout-seconds", "1",
        ]
        appset_argv = [
            str(lite), "argocd-applicationset-controller", *logging, *kube,
            "--argocd-repo-server", repo_server, "--repo-server-plaintext",
            "--metrics-addr", f"127.0.0.1:{ports.appset_metrics}",
            "--probe-addr", f"127.0.0.1:{ports.appset_probe}",
            "--webhook-addr", f"127.0.0.1:{ports.appset_webhook}",
            "--enable-leader-election=false",
        ]
        # fmt: on
        return [
            process("redis", redis_argv),
            process("argocd-repo-server", repo_server_argv),
            process("argocd-application-controller", controller_argv),
            process("argocd-applicationset-controller", appset_argv),
        ]

    def _spawn(self, process: _Process) -> None:
        with process.log.open("ab") as log:
            process.popen = subprocess.Popen(
                process.argv,
                env=process.env,
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: stop() ends its git children
            )

    def _check_processes(self) -> None:
        for process in self.processes:
            if process.popen is not None and process.popen.poll() is not None:
                tail = process.log.read_text(errors="replace")[-3000:]
                raise RuntimeError(
                    f"{process.name} exited ({process.popen.returncode}); {process.log}:\n{tail}"
                )

    def _redis_ready(self) -> bool:
        if self.ports is None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", self.ports.redis), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    @staticmethod
    def _http_ok(port: int, path: str) -> bool:
        try:
            with _OPENER.open(f"http://127.0.0.1:{port}{path}", timeout=2) as response:
                return bool(response.status == 200)
        except OSError:
            return False

    def _wait(self, probe: Callable[[], bool], what: str, timeout: float, since: float) -> None:
        while not probe():
            self._check_processes()
            if time.monotonic() - since >= timeout:
                raise TimeoutError(
                    f"timed out after {timeout:.0f}s waiting for {what} (logs in {self.workdir})"
                )
            time.sleep(0.1)


_APPLY: dict[str, Any] = {
    "field_manager": FIELD_MANAGER,
    "force": True,
    "_content_type": "application/apply-patch+yaml",
}
_PLURALS = {
    "Application": "applications",
    "ApplicationSet": "applicationsets",
    "AppProject": "appprojects",
}


# -- reading Applications ----------------------------------------------------------------------


def sync_status(app: Application) -> str | None:
    """Synced, OutOfSync or Unknown (None before the controller's first comparison)."""
    value = ((app.get("status") or {}).get("sync") or {}).get("status")
    return None if value is None else str(value)


def health_status(app: Application) -> str | None:
    """The Application's aggregated health: Healthy, Progressing, Degraded, Suspended,
    Missing or Unknown."""
    value = ((app.get("status") or {}).get("health") or {}).get("status")
    return None if value is None else str(value)


def resource(
    app: Application, kind: str, name: str, *, namespace: str | None = None
) -> dict[str, Any] | None:
    """One entry of .status.resources (group, kind, namespace, name, status, health)."""
    for entry in (app.get("status") or {}).get("resources") or []:
        if (entry.get("kind"), entry.get("name")) == (kind, name) and (
            namespace is None or entry.get("namespace") == namespace
        ):
            return dict(entry)
    return None


def resource_health(
    app: Application, kind: str, name: str, *, namespace: str | None = None
) -> tuple[str, str] | None:
    """(status, message) of one resource's health as Argo CD computed it (for llmfleet
    kinds: the Lua checks), or None when it has none yet."""
    entry = resource(app, kind, name, namespace=namespace)
    health = (entry or {}).get("health")
    if not health or "status" not in health:
        return None
    return str(health["status"]), str(health.get("message", ""))


def operation_phase(app: Application) -> str | None:
    """The last sync operation's phase: Running, Succeeded, Failed, Error or Terminating."""
    value = ((app.get("status") or {}).get("operationState") or {}).get("phase")
    return None if value is None else str(value)


def summary(app: Application) -> str:
    """One line for assertion messages: sync, health, operation, conditions, resources."""
    status = app.get("status") or {}
    parts = [
        f"sync={sync_status(app)}",
        f"revision={(status.get('sync') or {}).get('revision', '')[:12]}",
        f"health={health_status(app)}",
        f"operation={operation_phase(app)}",
    ]
    message = (status.get("operationState") or {}).get("message")
    if message:
        parts.append(f"operation-message={message!r}")
    parts.extend(
        f"condition {condition.get('type')}: {condition.get('message')!r}"
        for condition in status.get("conditions") or []
    )
    for entry in status.get("resources") or []:
        health = entry.get("health") or {}
        parts.append(
            f"{entry.get('kind')}/{entry.get('namespace', '')}/{entry.get('name')}="
            f"{entry.get('status')},{health.get('status')}({health.get('message', '')!r})"
        )
    return "; ".join(parts)


# -- clusters and git --------------------------------------------------------------------------


def cluster_secret(
    name: str,
    kubeconfig: Path,
    *,
    namespace: str = "argocd",
    labels: Mapping[str, str] | None = None,
    server: str | None = None,
) -> dict[str, Any]:
    """An Argo CD cluster Secret (label argocd.argoproj.io/secret-type=cluster; data name,
    server, config) for the current context of `kubeconfig`: its server, CA (or
    insecure-skip-tls-verify), bearer token or client certificate. `server` overrides the
    URL (Argo CD keys clusters by URL: two Secrets for one API server need two spellings,
    e.g. https://127.0.0.1:P and https://localhost:P)."""
    kube = yaml.safe_load(kubeconfig.read_text())
    context_name = kube.get("current-context")
    context = _named(kube.get("contexts"), context_name)["context"]
    cluster = _named(kube.get("clusters"), context["cluster"])["cluster"]
    user = _named(kube.get("users"), context["user"])["user"] or {}
    base = kubeconfig.parent

    def data(key: str) -> str | None:
        """A base64 *-data field, or the file its path-valued twin names."""
        source = {**cluster, **user}
        if source.get(f"{key}-data"):
            return str(source[f"{key}-data"])
        if source.get(key):
            return base64.b64encode((base / source[key]).read_bytes()).decode()
        return None

    tls: dict[str, Any] = {"insecure": bool(cluster.get("insecure-skip-tls-verify", False))}
    for field, key in (
        ("caData", "certificate-authority"),
        ("certData", "client-certificate"),
        ("keyData", "client-key"),
    ):
        value = data(key)
        if value is not None:
            tls[field] = value
    if tls["insecure"]:
        tls.pop("caData", None)
    settings: dict[str, Any] = {"tlsClientConfig": tls}
    token = user.get("token") or (
        (base / user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None
    )
    if token:
        settings["bearerToken"] = token
    elif user.get("username"):
        settings["username"], settings["password"] = user["username"], user.get("password", "")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {**(labels or {}), SECRET_TYPE_LABEL: "cluster"},
        },
        "stringData": {
            "name": name,
            "server": server or str(cluster["server"]),
            "config": json.dumps(settings),
        },
    }


class GitRepo:
    """A git repository on disk that Applications read as `file://` (no server, no
    credentials). `commit` writes files and commits them to `branch`."""

    def __init__(self, path: Path, *, branch: str = "main") -> None:
        self.path = path
        self.branch = branch
        path.mkdir(parents=True, exist_ok=True)
        if not (path / ".git").exists():
            self._git("init", "-q", "-b", branch)

    @property
    def url(self) -> str:
        return self.path.resolve().as_uri()

    def commit(
        self,
        files: Mapping[str, str | Mapping[str, Any] | list[Mapping[str, Any]]],
        message: str = "update",
        *,
        remove: tuple[str, ...] = (),
    ) -> str:
        """Writes each file (text, one manifest, or a list of manifests as one multi-document
        YAML), removes `remove`, commits everything; returns the commit's sha."""
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, str):
                target.write_text(content)
            elif isinstance(content, list):
                target.write_text(yaml.safe_dump_all(content, sort_keys=False))
            else:
                target.write_text(yaml.safe_dump(dict(content), sort_keys=False))
        for name in remove:
            (self.path / name).unlink(missing_ok=True)
        self._git("add", "-A")
        self._git("commit", "-q", "--allow-empty", "-m", message)
        return self.head()

    def head(self) -> str:
        return self._git("rev-parse", "HEAD").strip()

    def _git(self, *args: str) -> str:
        identity = ["-c", "user.name=llmfleet", "-c", "user.email=llmfleet@localhost"]
        result = subprocess.run(
            ["git", *identity, "-C", str(self.path), *args],
            stdout=subprocess.PIPE,
            text=True,
            check=True,
        )
        return result.stdout


def _as_dict(value: object) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise TypeError(f"expected an object from the API server, got {type(value).__name__}")
    return value


def _named(items: list[dict[str, Any]] | None, name: str) -> dict[str, Any]:
    for item in items or []:
        if item.get("name") == name:
            return item
    raise ValueError(f"no entry {name!r} in the kubeconfig")


def _signal_group(pid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, sig)
