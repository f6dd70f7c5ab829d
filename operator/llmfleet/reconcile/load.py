"""Load of autoscaled models, read from Prometheus in the background: a reconcile reads the
last round and never waits on Prometheus. A model is read from the first time a reconcile
asks until nobody has asked for a while; each round wakes the models it read, so their
timers (scale-down delay, scale to zero) are looked at as often as the load.

One round asks each Prometheus a few grouped queries (one per runtime in use, the gateways'
request counters and rates) and each custom query once, whatever the number of models.
"""

from __future__ import annotations

import json
import logging
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from llmfleet.placement import autoscale
from llmfleet.placement.autoscale import OWNER_LABEL, Reading

log = logging.getLogger(__name__)

ROUND_SECONDS = 15.0
FORGET_SECONDS = 600.0
QUERY_TIMEOUT = 5.0

Sample = tuple[dict[str, str], float]


class QueryError(Exception):
    pass


def instant_query(url: str, expr: str) -> list[Sample]:
    """One PromQL instant query: each series' labels and value (a scalar has no labels)."""
    address = f"{url.rstrip('/')}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    try:
        with urllib.request.urlopen(address, timeout=QUERY_TIMEOUT) as response:  # noqa: S310 - http(s) by settings
            body = json.load(response)
    except urllib.error.HTTPError as error:
        detail = error.read().decode(errors="replace")[:300]
        raise QueryError(f"Prometheus at {url} answered {error.code}: {detail}") from error
    except (OSError, ValueError) as error:
        raise QueryError(f"Prometheus at {url} cannot be read: {error}") from error
    if not isinstance(body, dict) or body.get("status") != "success":
        refusal = body.get("error", body) if isinstance(body, dict) else body
        raise QueryError(f"Prometheus at {url} refused the query: {str(refusal)[:300]}")
    return samples(url, body.get("data") or {})


def samples(url: str, data: Mapping[str, Any]) -> list[Sample]:
    """An instant vector or a scalar, as finite numbers; anything else says what it was."""
    kind = data.get("resultType")
    found: list[Sample]
    try:
        if kind == "scalar":
            found = [({}, float(data["result"][1]))]
        elif kind == "vector":
            found = [(dict(s.get("metric") or {}), float(s["value"][1])) for s in data["result"]]
        else:
            raise QueryError(
                f"Prometheus at {url} returned a {kind}, not an instant vector or a number"
            )
    except (KeyError, IndexError, TypeError, ValueError) as error:
        raise QueryError(f"Prometheus at {url} returned an unreadable result: {error}") from error
    for _, value in found:
        if not math.isfinite(value):
            raise QueryError(f"Prometheus at {url} returned {value} (not a finite number)")
    return found


@dataclass(frozen=True)
class Interest:
    """What a model's load is made of, as its reconcile last described it."""

    namespace: str
    name: str
    runtime: str
    urls: tuple[str, ...]
    query: str | None = None


@dataclass
class _Model:
    interest: Interest
    asked: float
    reading: Reading | None = None


@dataclass
class _Round:
    """One Prometheus's answers in one round."""

    error: str = ""
    by_owner: dict[str, float] = field(default_factory=dict)
    requests: dict[tuple[str, str], float] = field(default_factory=dict)
    rates: dict[tuple[str, str], float] = field(default_factory=dict)
    custom: dict[str, float | str] = field(default_factory=dict)


class LoadReader:
    def __init__(
        self,
        *,
        query: Callable[[str, str], list[Sample]] = instant_query,
        wake: Callable[[str], None] = lambda _: None,
        interval: float = ROUND_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.query = query
        self.wake = wake
        self.interval = interval
        self.clock = clock
        self._models: dict[str, _Model] = {}
        # Last value of each gateway counter per Prometheus, and when it last rose.
        self._counters: dict[str, dict[tuple[str, str], float]] = {}
        self._requested_at: dict[tuple[str, str], float] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._due = threading.Event()
        self._thread = threading.Thread(target=self._run, name="load-reader", daemon=True)

    def start(self) -> LoadReader:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._due.set()

    def reading(self, owner: str, interest: Interest) -> Reading:
        """The model's load as last read (`load` None until the first round that reads it;
        the model is woken then)."""
        with self._lock:
            known = self._models.get(owner)
            if known is None or known.interest != interest:
                known = self._models[owner] = _Model(interest, self.clock())
                self._due.set()
            known.asked = self.clock()
            if known.reading is not None:
                return known.reading
        if not interest.urls:
            return Reading(None, NO_PROMETHEUS)
        return Reading(None, "not read from Prometheus yet", pending=True)

    def forget(self, owner: str) -> None:
        with self._lock:
            self._models.pop(owner, None)

    def read_all(self) -> None:
        """One round: every Prometheus asked about, then each model's reading."""
        now = self.clock()
        with self._lock:
            for owner in [o for o, m in self._models.items() if now - m.asked > FORGET_SECONDS]:
                del self._models[owner]
            models = dict(self._models)
        rounds = {url: self._ask(url, models) for url in _urls(models)}
        with self._lock:
            for owner, model in models.items():
                current = self._models.get(owner)
                if current is not None and current.interest == model.interest:
                    current.reading = self._reading(owner, model.interest, rounds)
        for owner in sorted(models):
            self.wake(owner)

    def _ask(self, url: str, models: Mapping[str, _Model]) -> _Round:
        """One Prometheus's answers; whatever goes wrong stays with this Prometheus (or this
        model's own query), never stops the round for the others."""
        try:
            return self._answers(url, models)
        except Exception as error:  # reported on the models that read it
            log.exception("reading the load from %s failed", url)
            return _Round(error=f"Prometheus at {url} could not be read: {error!r}")

    def _answers(self, url: str, models: Mapping[str, _Model]) -> _Round:
        answers = _Round()
        interests = [m.interest for m in models.values() if url in m.interest.urls]
        try:
            for runtime in sorted({i.runtime for i in interests if not i.query}):
                expr = autoscale.runtime_query(runtime)
                for labels, value in self.query(url, expr) if expr else ():
                    owner = labels.get(OWNER_LABEL, "")
                    answers.by_owner[owner] = answers.by_owner.get(owner, 0.0) + value
            for labels, value in self.query(url, autoscale.gateway_requests_query()):
                answers.requests[_model_key(labels)] = value
            for labels, value in self.query(url, autoscale.gateway_rate_query()):
                answers.rates[_model_key(labels)] = value
        except QueryError as error:
            answers.error = str(error)
            return answers
        for owner, model in models.items():
            interest = model.interest
            if url not in interest.urls or not interest.query:
                continue
            expr = autoscale.custom_query(interest.query, owner, interest.namespace)
            try:
                found = self.query(url, expr)
            except QueryError as error:
                answers.custom[owner] = f"spec.autoscaling.query: {error}"
                continue
            if found:  # no series: no data, not zero
                answers.custom[owner] = sum(v for _, v in found)
        self._note_requests(url, answers.requests)
        return answers

    def _note_requests(self, url: str, counters: dict[tuple[str, str], float]) -> None:
        """When each model's request counter last rose. The first round of a Prometheus only
        sets the baseline: what was counted before is not a new request. A counter that falls
        is a gateway restarting (a roll), not a request."""
        now = self.clock()
        with self._lock:
            before = self._counters.get(url)
            # A series missing from one answer (a failed scrape) keeps its last value, so its
            # return is no new request.
            self._counters[url] = {**(before or {}), **counters}
            if before is None:
                return
            for key, value in counters.items():
                if value > before.get(key, 0.0):
                    self._requested_at[key] = now

    def _reading(self, owner: str, interest: Interest, rounds: Mapping[str, _Round]) -> Reading:
        key = (interest.namespace, interest.name)
        requested_at = self._requested_at.get(key)
        if not interest.urls:
            return Reading(None, NO_PROMETHEUS, requested_at=requested_at)
        load, found = 0.0, False
        for url in interest.urls:
            answers = rounds[url]
            if answers.error:
                return Reading(None, answers.error, requested_at=requested_at)
            if interest.query:
                value = answers.custom.get(owner)
                if isinstance(value, str):
                    return Reading(None, value, requested_at=requested_at)
                if value is not None:
                    load, found = load + value, True
            elif autoscale.runtime_query(interest.runtime) is None:
                if key in answers.rates:
                    load, found = load + answers.rates[key], True
            elif owner in answers.by_owner:
                load, found = load + answers.by_owner[owner], True
        return Reading(round(max(load, 0.0), 3), found=found, requested_at=requested_at)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._due.clear()
            try:
                self.read_all()
            except Exception:
                log.exception("reading the load of autoscaled models failed")
            self._due.wait(self.interval)


NO_PROMETHEUS = (
    "no Prometheus to read the load from: set the operator's --prometheus-url (Helm: "
    "autoscaling.prometheusUrl) or annotate the member cluster's registration Secret with "
    "llmfleet.io/prometheus-url"
)


def _model_key(labels: Mapping[str, str]) -> tuple[str, str]:
    return labels.get("namespace", ""), labels.get("llmdeployment", "")


def _urls(models: Mapping[str, _Model]) -> list[str]:
    return sorted({url for m in models.values() for url in m.interest.urls})
