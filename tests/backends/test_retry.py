"""The retry rule (backends.retry) on its own; the HTTP tests show it against a real server."""

from __future__ import annotations

import math
import time

import pytest

from backends.errors import BackendError
from backends.retry import RetryPolicy

POLICY = RetryPolicy(base=1.0, max=5.0, max_retries=3, max_retry_after=60.0)


def down() -> BackendError:
    return BackendError("server_error", "HTTP 503")


def limited(retry_after: float) -> BackendError:
    return BackendError("rate_limit", "HTTP 429", retry_after=retry_after)


@pytest.mark.parametrize(("retries_done", "ceiling"), [(0, 1.0), (1, 2.0), (2, 4.0), (3, 5.0), (40, 5.0)])
def test_the_backoff_doubles_up_to_the_cap_with_jitter_between_half_and_all(retries_done, ceiling):
    waits = [POLICY.backoff(retries_done) for _ in range(400)]

    assert all(ceiling / 2 <= w <= ceiling for w in waits)
    assert min(waits) < ceiling * 0.6 and max(waits) > ceiling * 0.9  # spread, not a constant


def test_a_huge_retry_count_still_gives_the_cap():
    assert 2.5 <= RetryPolicy(base=1.0, max=5.0, max_retries=10**6).backoff(10**5) <= 5.0


def test_errors_that_cannot_succeed_are_never_retried():
    assert POLICY.delay(BackendError("bad_request", "HTTP 400"), 0) is None
    assert POLICY.delay(BackendError("rate_limit", "no credit", retryable=False), 0) is None


def test_retries_stop_after_max_retries():
    assert POLICY.delay(down(), 2) is not None
    assert POLICY.delay(down(), 3) is None
    assert RetryPolicy(base=1.0, max=5.0, max_retries=0).delay(down(), 0) is None


def test_retry_after_is_a_floor_under_the_backoff():
    assert POLICY.delay(limited(7.0), 0) == 7.0  # more than the backoff: the provider's wait
    assert 0.5 <= POLICY.delay(limited(0.0), 0) <= 1.0  # less: the backoff still applies


def test_a_retry_after_over_the_limit_is_raised_at_once():
    assert POLICY.delay(limited(61.0), 0) is None
    assert POLICY.delay(limited(60.0), 0) == 60.0


def test_a_wait_the_caller_cannot_afford_is_raised():
    assert POLICY.delay(limited(7.0), 0, max_wait=10.0) == 7.0
    assert POLICY.delay(limited(11.0), 0, max_wait=10.0) is None
    assert POLICY.delay(down(), 0, max_wait=0.4) is None  # the backoff is at least 0.5


def test_negative_settings_are_refused():
    with pytest.raises(ValueError, match="negative"):
        RetryPolicy(base=-1.0, max=5.0, max_retries=3)
    with pytest.raises(ValueError, match="max_retries"):
        RetryPolicy(base=1.0, max=5.0, max_retries=-1)


FAST = RetryPolicy(base=0.001, max=0.002, max_retries=2)


def test_attempts_retry_a_retryable_error_and_count():
    failures = [down(), down()]
    for attempt in FAST.attempts():
        with attempt:
            if failures:
                raise failures.pop()
    assert attempt.number == 3


def test_attempts_raise_when_retries_are_exhausted():
    calls = 0
    with pytest.raises(BackendError, match="503"):
        for attempt in FAST.attempts():
            with attempt:
                calls += 1
                raise down()
    assert calls == 3


def test_attempts_raise_at_once_after_no_more_retries():
    calls = 0
    with pytest.raises(BackendError):
        for attempt in FAST.attempts():
            with attempt:
                calls += 1
                attempt.no_more_retries()  # e.g. text was already streamed
                raise down()
    assert calls == 1


def test_attempts_never_sleep_past_the_deadline():
    calls = 0
    with pytest.raises(BackendError):
        for attempt in RetryPolicy(base=30.0, max=30.0, max_retries=5).attempts(time.monotonic() + 5):
            with attempt:
                calls += 1
                raise down()
    assert calls == 1


def test_attempts_let_other_exceptions_through():
    calls = 0
    with pytest.raises(KeyError):
        for attempt in FAST.attempts():
            with attempt:
                calls += 1
                raise KeyError("not a backend error")
    assert calls == 1


def test_the_default_allows_any_retry_after():
    assert RetryPolicy(base=1.0, max=5.0, max_retries=1).max_retry_after == math.inf
    assert RetryPolicy(base=1.0, max=5.0, max_retries=1).delay(limited(3600.0), 0) == 3600.0
