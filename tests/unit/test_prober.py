"""Managed endpoints' health, probed in the background against a local stub."""

from __future__ import annotations

import time

from llmfleet.reconcile.prober import Prober, probe
from localfleet.stubs import StubModel


def test_probe_reads_health_from_the_url() -> None:
    stub = StubModel("provider")
    try:
        assert probe(stub.url + "/models")
        assert not probe("http://127.0.0.1:1/")
    finally:
        stub.close()


def test_prober_answers_from_its_last_round_and_wakes_who_asked_on_a_change() -> None:
    stub = StubModel("provider")
    woken: list[str] = []
    prober = Prober(wake=woken.append, interval=0.05).start()
    url = stub.url + "/models"
    try:
        assert prober.health(url, "ChatEndpoint.team.chat") is None  # not probed yet
        deadline = time.monotonic() + 5
        while prober.health(url, "ChatEndpoint.team.chat") is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert prober.health(url, "ChatEndpoint.team.chat") is True
        assert woken == ["ChatEndpoint.team.chat"]
        assert prober.health(url, "x") is True
        stub.close()
        while prober.health(url, "x") is not False and time.monotonic() < deadline:
            time.sleep(0.02)
        assert prober.health(url, "x") is False
        while len(woken) < 3 and time.monotonic() < deadline:  # woken just after the answer
            time.sleep(0.02)
        assert sorted(woken[1:]) == ["ChatEndpoint.team.chat", "x"]
    finally:
        prober.stop()
        stub.close()


def test_a_disabled_prober_says_healthy_and_sends_nothing() -> None:
    asked: list[str] = []
    prober = Prober(enabled=False, check=lambda url: asked.append(url) or False).start()
    assert prober.health("https://provider.example/v1", "o") is True
    prober.probe_all()
    assert asked == []
