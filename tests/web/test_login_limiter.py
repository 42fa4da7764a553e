"""The login limiter holds only failures inside its window, however many usernames are tried."""

from __future__ import annotations

import pytest

from ldncare.web import auth
from ldncare.web.auth import LoginLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(auth.time, "monotonic", fake)
    return fake


def test_probing_usernames_that_never_failed_keeps_nothing(clock: Clock) -> None:
    limiter = LoginLimiter(max_failures=3, window_seconds=60)
    for i in range(1000):
        assert limiter.blocked("10.0.0.1", f"guess{i}") == 0
    assert limiter.keys_held() == 0


def test_failures_past_the_window_are_dropped(clock: Clock) -> None:
    limiter = LoginLimiter(max_failures=3, window_seconds=60)
    for i in range(1000):
        limiter.fail("10.0.0.1", f"guess{i}")
    assert limiter.keys_held() == 1000
    clock.now += 61
    assert limiter.blocked("10.0.0.1", "guess0") == 0  # expired: read and dropped
    assert limiter.keys_held() == 999
    limiter.fail("10.0.0.2", "someone")  # a failure after a window sweeps the expired keys
    assert limiter.keys_held() == 1


def test_blocking_still_works(clock: Clock) -> None:
    limiter = LoginLimiter(max_failures=3, window_seconds=60)
    for _ in range(3):
        assert limiter.blocked("10.0.0.1", "Anna") == 0
        limiter.fail("10.0.0.1", "anna ")
    assert limiter.blocked("10.0.0.1", "anna") == 61
    clock.now += 30
    assert limiter.blocked("10.0.0.1", "anna") == 31
    clock.now += 31
    assert limiter.blocked("10.0.0.1", "anna") == 0
    limiter.fail("10.0.0.1", "anna")
    limiter.succeed("10.0.0.1", "anna")
    assert limiter.keys_held() == 0
