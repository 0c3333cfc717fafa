"""The one retry rule for backend calls: which failures are tried again, how long to wait, when to stop.

Two layers use it: an HTTP backend between the attempts of one call (:mod:`backends.http_client`, in
process, sleeping) and the generation task between its tries of a response (``arena.services.generation``,
which hands the wait to the task queue instead of sleeping).

The rule, for a :class:`~backends.errors.BackendError` after ``retries_done`` retries:

- Raised at once when the error is not ``retryable``, when ``max_retries`` retries were done, or when
  the provider's ``Retry-After`` asks for more than ``max_retry_after`` seconds (the error keeps the
  wait in ``retry_after``, so a task queue can schedule the retry instead of a worker sleeping).
- Otherwise the wait is the exponential backoff ``base * 2**retries_done`` capped at ``max``,
  randomised to between half and all of it (jitter spreads clients that failed together), and never
  less than the provider's ``Retry-After``.
- A wait longer than the caller can afford (``max_wait``: the time left before a deadline, or how long
  a voter may be kept waiting) raises instead of waiting.

Why not tenacity: its jittered waits are "full jitter" (0 to all), a ``Retry-After`` floor, the
``max_retry_after`` cut and "no retry after the first streamed text" would each be a custom class, and
the task layer needs the delay alone, without a loop that sleeps.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import TracebackType

from backends.errors import BackendError

_jitter = random.Random()


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to retry (the rule is in the module docstring).

    ``base`` and ``max`` are seconds; ``max_retries`` counts retries after the first try.
    """

    base: float
    max: float
    max_retries: int
    max_retry_after: float = math.inf

    def __post_init__(self) -> None:
        if self.base < 0 or self.max < 0 or self.max_retry_after < 0:
            raise ValueError(f"retry waits must not be negative: {self!r}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must not be negative: {self!r}")

    def backoff(self, retries_done: int) -> float:
        """The jittered exponential wait before retry number ``retries_done + 1``."""
        ceiling = min(self.max, self.base * 2.0 ** min(retries_done, 1023))
        return ceiling * _jitter.uniform(0.5, 1.0)

    def delay(self, error: BackendError, retries_done: int, *, max_wait: float = math.inf) -> float | None:
        """Seconds to wait before trying again after ``error``, or None when it must be raised."""
        if not error.retryable or retries_done >= self.max_retries:
            return None
        wait = self.backoff(retries_done)
        if error.retry_after is not None:
            if error.retry_after > self.max_retry_after:
                return None
            wait = max(wait, error.retry_after)
        return None if wait > max_wait else wait

    def attempts(self, deadline: float | None = None) -> Iterator[Attempt]:
        """Attempts of one call, each a context manager that sleeps and goes on after a retryable error.

        ::

            for attempt in policy.attempts(deadline):
                with attempt:
                    result = call()

        An error the rule does not retry (or one raised after :meth:`Attempt.no_more_retries`) leaves
        the ``with`` block; the wait never reaches past ``deadline`` (a ``time.monotonic()`` value).
        """
        number = 0
        while True:
            number += 1
            attempt = Attempt(self, number, deadline)
            yield attempt
            if not attempt.failed:
                return


class Attempt:
    """One try of a call; ``number`` starts at 1. See :meth:`RetryPolicy.attempts`."""

    def __init__(self, policy: RetryPolicy, number: int, deadline: float | None) -> None:
        self.policy = policy
        self.number = number
        self.deadline = deadline
        self.failed = False
        self._final = False

    def no_more_retries(self) -> None:
        """From now on an error of this attempt is raised (e.g. text already reached the caller)."""
        self._final = True

    def __enter__(self) -> Attempt:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        if not isinstance(exc, BackendError) or self._final:
            return False
        max_wait = math.inf if self.deadline is None else self.deadline - time.monotonic()
        wait = self.policy.delay(exc, self.number - 1, max_wait=max_wait)
        if wait is None:
            return False
        time.sleep(wait)
        self.failed = True
        return True  # the error is swallowed: the loop makes the next attempt
