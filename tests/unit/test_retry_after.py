"""How long a throttled request waits before it is sent again."""

from __future__ import annotations

import pytest

from llmfleet.kube.rest import retry_after


@pytest.mark.parametrize(
    ("header", "seconds"),
    [(None, 1.0), ("1", 1.0), ("5", 5.0), ("0", 1.0), ("0.2", 1.0), ("600", 30.0), ("soon", 1.0)],
)
def test_retry_after_is_honoured_within_bounds(header: str | None, seconds: float) -> None:
    assert retry_after(header) == seconds
