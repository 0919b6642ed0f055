"""Request pacing: a leaky-bucket limiter that slows down on 429 and recovers on success.

One `AdaptiveLimiter` per quota (submit RPS, query RPS). It wraps
`aiolimiter.AsyncLimiter(1, 1 / rate)`: a bucket of size one spaces requests
evenly and lets no burst through at start (`AsyncLimiter(rps, 1)` would let `rps`
go at once).

AIMD, as TCP does it: `throttled()` halves the rate (never below `floor`) and, when
the server sent Retry-After, holds every request until then; `succeeded()` adds a
tenth of the configured rate back, at most once per `recover_after` seconds, until
the configured rate is reached again.

aiolimiter cannot change a limiter's rate, so a rate change installs a new
`AsyncLimiter`. A task that was queued on the old one re-queues on the new one
when it is let through, so every request that goes out has passed the limiter of
the current rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from types import TracebackType

from aiolimiter import AsyncLimiter

__all__ = ["AdaptiveLimiter"]


class AdaptiveLimiter:
    """At most `rate` acquisitions a second, evenly spaced; adapts to the server's 429s.

    ``async with limiter: await client.query(...)`` takes one slot. `clock` (seconds,
    monotonic) defaults to the running loop's time.
    """

    def __init__(
        self,
        rps: float,
        *,
        floor: float = 0.2,
        clock: Callable[[], float] | None = None,
        recover_after: float = 5.0,
    ) -> None:
        if rps <= 0:
            raise ValueError("rps must be positive")
        self._rps = float(rps)
        self._floor = min(float(floor), self._rps)
        if self._floor <= 0:
            raise ValueError("floor must be positive")
        self._clock = clock
        self._recover_after = recover_after
        self._rate = self._rps
        self._limiter = AsyncLimiter(1, 1 / self._rate)
        #: nobody is let through before this time (Retry-After, or spacing after a change)
        self._resume_at = float("-inf")
        self._last_grant = float("-inf")
        self._last_change = float("-inf")
        self._last_decrease = float("-inf")

    def __repr__(self) -> str:
        return f"<AdaptiveLimiter rate={self._rate:g}/s of {self._rps:g}/s>"

    @property
    def rate(self) -> float:
        """The current rate, in acquisitions per second."""
        return self._rate

    @property
    def configured_rate(self) -> float:
        """The rate asked for at construction, which recovery returns to."""
        return self._rps

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def acquire(self) -> None:
        """Wait for one slot."""
        while True:
            wait = self._resume_at - self._now()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            limiter = self._limiter
            await limiter.acquire()
            # The rate changed, or a pause began, while we were queued: queue again.
            if limiter is self._limiter and self._now() >= self._resume_at:
                break
        self._last_grant = self._now()

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def throttled(self, retry_after: float | None = None) -> None:
        """The server answered 429: halve the rate (not below the floor) and honour Retry-After.

        Several requests in flight are often refused together; the rate is halved
        once per second (or per Retry-After) at most, not once per refusal.
        """
        now = self._now()
        if retry_after is not None and retry_after > 0:
            self._resume_at = max(self._resume_at, now + retry_after)
        window = max(1.0, retry_after or 0.0)
        if now - self._last_decrease < window:
            self._last_change = now  # still refused: postpone recovery
            return
        self._last_decrease = now
        self._set_rate(max(self._floor, self._rate / 2), now)

    def succeeded(self) -> None:
        """A request went through: creep back toward the configured rate."""
        if self._rate >= self._rps:
            return
        now = self._now()
        if now - self._last_change < self._recover_after:
            return
        self._set_rate(min(self._rps, self._rate + self._rps / 10), now)

    def _set_rate(self, rate: float, now: float) -> None:
        self._last_change = now
        if rate == self._rate:
            return
        self._rate = rate
        self._limiter = AsyncLimiter(1, 1 / rate)
        # The fresh bucket is empty; keep the spacing from the last request let through.
        self._resume_at = max(self._resume_at, self._last_grant + 1 / rate)
