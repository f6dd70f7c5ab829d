"""Which label selectors the watch-fed view can answer."""

from __future__ import annotations

import pytest

from llmfleet.kube.cache import parse_selector


@pytest.mark.parametrize(
    ("selector", "parsed"),
    [
        ("a=b", {"a": "b"}),
        ("llmfleet.io/owner=x,llmfleet.io/stage=train", {"llmfleet.io/owner": "x", "llmfleet.io/stage": "train"}),
        ("a = b", {"a": "b"}),
        ("a==b", None),
        ("a!=b", None),
        ("a in (b,c)", None),
        ("a", None),
        ("!a", None),
    ],
)  # fmt: skip
def test_equality_selectors_only(selector: str, parsed: dict[str, str] | None) -> None:
    assert parse_selector(selector) == parsed
