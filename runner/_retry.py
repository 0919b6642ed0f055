"""Retry policy: when to try an API call again, and how long to wait first.

The decisions (`backoff_delay`, `is_retryable`) are pure functions; `retry_call`
is the one small async helper that carries them out, with `sleep` injected so
tests never sleep for real.

The rule that matters most: a *create* that may have reached the server is never
repeated, because a second create is a second bill. It is retried only when the
request provably never left this machine (`TransientError.reached_server` is
False) or when the server answered 429 (a refusal: nothing was created).
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from ._errors import Throttled, TransientError

T = TypeVar("T")

__all__ = ["RetryPolicy", "backoff_delay", "is_retryable", "retry_call"]


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how patiently to retry one call."""

    #: total attempts, the first one included
    attempts: int = 6
    #: delay before the second attempt, in seconds; doubled for each further one
    base: float = 1.0
    #: the exponential delay never grows beyond this (a server's Retry-After may)
    cap: float = 60.0
    #: fraction of the delay that is randomised away (0 = none, 1 = "full jitter")
    jitter: float = 0.5

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base < 0 or self.cap < 0:
            raise ValueError("base and cap must not be negative")
        if not 0.0 <= self.jitter <= 1.0:
            raise ValueError("jitter must be between 0 and 1")


def backoff_delay(
    attempt: int,
    policy: RetryPolicy,
    *,
    retry_after: float | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after failed attempt number `attempt` (1 = the first).

    Exponential: ``min(cap, base * 2 ** (attempt - 1))``, of which a random share of
    up to `policy.jitter` is taken off so that many clients throttled together do
    not come back together. A server's `retry_after` is a floor: we never come back
    sooner than the server asked, even when that is beyond `cap`.
    """
    if attempt < 1:
        raise ValueError("attempt counts from 1")
    exponential = min(policy.cap, policy.base * 2.0 ** (attempt - 1))
    delay = exponential * (1.0 - policy.jitter * rand())
    if retry_after is not None and retry_after > delay:
        delay = retry_after
    return max(delay, 0.0)


def is_retryable(exc: BaseException, *, is_create: bool) -> bool:
    """Whether trying the same call again is both useful and safe.

    * `Throttled` (429): always; the server refused the request, so even a create
      made nothing.
    * other `TransientError`: queries, cancels, downloads always; a create only when
      the request never reached the server (`reached_server` is False).
    * everything else (rejected requests, account errors, bugs, cancellation): never.
    """
    if isinstance(exc, Throttled):
        return True
    if isinstance(exc, TransientError):
        return not is_create or not exc.reached_server
    return False


async def retry_call(
    fn: Callable[[], Awaitable[T]],
    *,
    policy: RetryPolicy,
    is_create: bool = False,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    on_retry: Callable[[int, BaseException, float], None] | None = None,
    rand: Callable[[], float] = random.random,
) -> T:
    """Await `fn()` until it succeeds, retrying what `is_retryable` allows.

    `on_retry(attempt, exc, delay)` is called before each wait (e.g. to log it or to
    tell a rate limiter about a 429). Raises the last error when it is not
    retryable or when `policy.attempts` are used up. `CancelledError` is never
    caught.
    """
    attempt = 1
    while True:
        try:
            return await fn()
        except Exception as exc:
            if attempt >= policy.attempts or not is_retryable(exc, is_create=is_create):
                raise
            retry_after = exc.retry_after if isinstance(exc, Throttled) else None
            delay = backoff_delay(attempt, policy, retry_after=retry_after, rand=rand)
            if on_retry is not None:
                on_retry(attempt, exc, delay)
        await sleep(delay)
        attempt += 1
