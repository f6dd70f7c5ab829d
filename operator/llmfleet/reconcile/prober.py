"""Health of managed endpoints, probed in the background: a reconcile reads the last result
and never waits on a provider. A URL is probed from the first time a reconcile asks about it
until nobody has asked for a while; a change of answer wakes the resources that asked."""

from __future__ import annotations

import logging
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)

PROBE_SECONDS = 30.0
FORGET_SECONDS = 600.0


def probe(url: str) -> bool:
    """A managed site answers (any status below 500) at its URL."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 - http(s) by CRD
            return bool(response.status < 500)
    except urllib.error.HTTPError as error:
        return error.code < 500
    except OSError:
        return False


@dataclass
class _Target:
    healthy: bool | None = None
    asked: float = 0.0
    owners: set[str] = field(default_factory=set)


class Prober:
    def __init__(
        self,
        *,
        enabled: bool = True,
        check: Callable[[str], bool] = probe,
        wake: Callable[[str], None] = lambda _: None,
        interval: float = PROBE_SECONDS,
    ) -> None:
        self.enabled = enabled
        self.check = check
        self.wake = wake
        self.interval = interval
        self._targets: dict[str, _Target] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread = threading.Thread(target=self._run, name="provider-prober", daemon=True)

    def start(self) -> Prober:
        if self.enabled:
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._due.set()

    def health(self, url: str, owner: str) -> bool | None:
        """The last answer for `url` (None: not probed yet; the owner is woken when it is).
        Always True when probing is off."""
        if not self.enabled:
            return True
        with self._lock:
            target = self._targets.setdefault(url, _Target())
            target.asked = time.monotonic()
            target.owners.add(owner)
            if target.healthy is None:
                self._due.set()
            return target.healthy

    def probe_all(self) -> None:
        """One round over every URL still asked about."""
        now = time.monotonic()
        with self._lock:
            for url in [u for u, t in self._targets.items() if now - t.asked > FORGET_SECONDS]:
                del self._targets[url]
            urls = list(self._targets)
        for url in urls:
            healthy = self.check(url)
            with self._lock:
                target = self._targets.get(url)
                if target is None or target.healthy == healthy:
                    continue
                target.healthy = healthy
                owners = sorted(target.owners)
            for owner in owners:
                self.wake(owner)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.clear()
            try:
                self.probe_all()
            except Exception:
                log.exception("probing managed endpoints failed")
            self._due.wait(self.interval)
