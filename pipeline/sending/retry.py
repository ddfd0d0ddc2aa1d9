"""Retry a provider call only when a retry cannot duplicate a message.

The promise: docs/contract.md, "Sending, journal and resume". Textlocal has no idempotency key
(docs/provider-api.md, "Rate limits and retries"), so a POST is repeated only when it is known
that nothing was sent:

    NotSentError    connection refused, DNS failure, connect timeout   -> retry, backing off
      RateLimited   HTTP 429                                            -> wait `retry_after`
    anything else   OutcomeUnknown, ProviderError, bugs, KeyboardInterrupt -> raised at once

Backoff is exponential with full jitter (AWS Architecture Blog, "Exponential Backoff And
Jitter"): sleep = uniform(0, min(cap, base * 2 ** attempt)), so many senders that failed together
do not come back together.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from pipeline.errors import NotSentError

T = TypeVar("T")

# 2.0 ** 1024 overflows a float; any exponent past this is far beyond every sane cap anyway.
_MAX_EXPONENT = 1000


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long to wait before resending a request that was known not sent."""

    attempts: int = 5  # total tries including the first
    base: float = 0.5  # seconds; the first retry waits up to `base`
    cap: float = 30.0  # the longest backoff sleep
    max_retry_after: float = 120.0  # a longer Retry-After: give up rather than stall the run

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be at least 1, not {self.attempts}")
        for name in ("base", "cap", "max_retry_after"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"RetryPolicy.{name} must be a finite number >= 0, not {value}")

    def backoff_ceiling(self, attempt: int) -> float:
        """The upper bound of the jittered sleep before retry number `attempt` (0-based)."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, not {attempt}")
        return min(self.cap, self.base * 2.0 ** min(attempt, _MAX_EXPONENT))

    def delay(self, attempt: int, error: Exception, rng: random.Random) -> float:
        """Seconds to sleep before retry `attempt` (0 = first retry) after `error`."""
        hint = retry_after(error)
        if hint is not None:
            # HTTP 429 with Retry-After: honour it exactly, never sooner (docs/contract.md,
            # "Sending, journal and resume"). Whether it is too long to wait is
            # call_with_retries' decision (max_retry_after).
            return hint
        return rng.uniform(0.0, self.backoff_ceiling(attempt))


def retry_after(error: BaseException) -> float | None:
    """The server's Retry-After in seconds carried by `error` (a RateLimited), else None."""
    # Duck-typed on the attribute so any provider's 429 error works, not only Textlocal's.
    value = getattr(error, "retry_after", None)
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return None  # absent or unreadable: fall back to the jittered backoff
    return max(0.0, float(value))


def call_with_retries(
    fn: Callable[[], T],
    policy: RetryPolicy = RetryPolicy(),
    *,
    sleep: Callable[[float], None] = time.sleep,
    rng: random.Random | None = None,
    on_retry: Callable[[int, Exception, float], None] | None = None,
) -> T:
    """`fn()`, retried with backoff after NotSentError only; the last one re-raised at the end."""
    for attempt in range(policy.attempts):
        try:
            return fn()
        except NotSentError as exc:
            # Only NotSentError (and its RateLimited) proves nothing reached the provider.
            # OutcomeUnknown may have been sent and ProviderError will not change on a resend,
            # so neither is caught here: they, and any other exception, propagate untouched.
            error = exc
            hint = retry_after(exc)
            if attempt == policy.attempts - 1:
                raise  # out of attempts: the rows stay known-not-sent (`failed`)
            if hint is not None and not hint <= policy.max_retry_after:
                raise  # the server asked for a longer wait than we will block for
        if rng is None:
            rng = random.Random()  # only built once a retry is actually needed
        wait = policy.delay(attempt, error, rng)
        # Outside the except block, so an error in the callback or a Ctrl-C during the sleep is
        # not chained to the transport error; KeyboardInterrupt is never caught here.
        if on_retry is not None:
            on_retry(attempt, error, wait)
        sleep(wait)
    raise AssertionError("unreachable: the last attempt returns or raises")  # pragma: no cover
