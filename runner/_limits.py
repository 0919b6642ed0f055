"""Request pacing: evenly spaced slots that slow down on 429 and recover on success.

One `AdaptiveLimiter` per quota (submit RPS, query RPS). Each caller reserves the
next slot on a virtual schedule, one every `1 / rate` seconds, and sleeps until
it (GCRA's "virtual scheduling"): requests go out evenly spaced, with no burst at
start, and an idle limiter banks no credit. Unlike a leaky bucket of size one
(`aiolimiter.AsyncLimiter(1, 1 / rate)`, which this replaced), a waiter woken a
millisecond late does not push every later slot back: under a busy event loop
the bucket lost 4-14 % of the quota in the throughput benchmark, the schedule
keeps the configured rate.

AIMD, as TCP does it: `throttled()` multiplies the rate by `decrease` (never below
`floor`) and, when the server sent Retry-After, holds every request until then;
`succeeded()` adds `recover_step` of the configured rate back, at most once per
`recover_after` seconds, until the configured rate is reached again. The cut is
gentle (a fifth) because a client pacing at the quota mostly meets isolated 429s
from network jitter; several in a row still cut the rate geometrically.

A rate change or a Retry-After pause starts a new generation of slots: a task
holding a slot of the old generation takes a new one when it wakes, so every
request that goes out was spaced at the current rate.

Catching up after a stall must not overrun the quota itself, so the limiter also
keeps the quota's own rule: never more than `rps` requests in any second
(`QUOTA_WINDOW`). And it paces at
`pacing` (e.g. 98 %) of `rps`, so that evenly spaced requests stay clear of a
quota of exactly `rps` even when some of them are a few milliseconds late.

With `probe_first`, the very first request goes out alone and the schedule
starts when its answer is back (`async with` only). The first request of a run
also opens the connection (DNS, TCP, TLS), so it reaches the server late; were
the next ones already on their way, the quota's first second could hold one too
many. It also means a bad key is refused once, not once per request in flight.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections import deque
from collections.abc import Callable
from types import TracebackType

__all__ = ["AdaptiveLimiter"]

#: the span, in seconds, in which at most `rps` requests are let through
QUOTA_WINDOW = 1.0


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
        recover_after: float = 1.0,
        decrease: float = 0.8,
        recover_step: float = 0.05,
        pacing: float = 1.0,
        probe_first: bool = False,
    ) -> None:
        if rps <= 0:
            raise ValueError("rps must be positive")
        self._rps = float(rps)
        self._floor = min(float(floor), self._rps)
        if self._floor <= 0:
            raise ValueError("floor must be positive")
        self._clock = clock
        self._recover_after = recover_after
        if not 0 < decrease < 1 or not 0 < recover_step <= 1:
            raise ValueError("decrease must be in (0, 1) and recover_step in (0, 1]")
        self._decrease = decrease
        self._recover_step = recover_step
        if not 0 < pacing <= 1:
            raise ValueError("pacing must be in (0, 1]")
        self._pacing = pacing
        #: set while the first request is out alone (`probe_first`); None before and after
        self._probe: asyncio.Event | None = None
        self._probed = not probe_first
        self._rate = self._rps
        #: when the last `rps` requests were let through (the quota's own window)
        self._granted: deque[float] = deque(maxlen=max(1, math.floor(self._rps)))
        #: the next free slot on the schedule, and the schedule's generation
        self._next_slot = float("-inf")
        self._generation = 0
        #: nobody is let through before this time (Retry-After)
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

    def _interval(self) -> float:
        """Seconds between two slots at the current rate."""
        return 1 / (self._rate * self._pacing)

    def _now(self) -> float:
        if self._clock is not None:
            return self._clock()
        try:
            return asyncio.get_running_loop().time()
        except RuntimeError:
            return time.monotonic()

    async def acquire(self) -> None:
        """Wait for one slot."""
        while self._probe is not None:
            await self._probe.wait()
        if not self._probed:
            self._probed = True
            self._probe = asyncio.Event()
        while True:
            now = self._now()
            slot = max(self._next_slot, now, self._resume_at)
            self._next_slot = slot + self._interval()
            generation = self._generation
            if slot > now:
                await asyncio.sleep(slot - now)
            # The rate changed, or a pause began, while we slept: take a slot of the new schedule.
            if generation == self._generation:
                break
        while (wait := self._window_wait()) > 0:
            await asyncio.sleep(wait)
        self._last_grant = self._now()
        self._granted.append(self._last_grant)

    def _window_wait(self) -> float:
        """Seconds until one more request fits in the quota's window (0 when it fits now)."""
        if len(self._granted) < (self._granted.maxlen or 1):
            return 0.0
        return max(0.0, self._granted[0] + QUOTA_WINDOW - self._now())

    async def __aenter__(self) -> None:
        await self.acquire()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._probe is not None:
            # The first request is answered: the schedule starts now.
            self._next_slot = self._now() + self._interval()
            self._probe.set()
            self._probe = None

    def throttled(self, retry_after: float | None = None) -> None:
        """The server answered 429: cut the rate by `decrease` (not below the floor); honour Retry-After.

        Several requests in flight are often refused together; the rate is cut
        once per second (or per Retry-After) at most, not once per refusal.
        """
        now = self._now()
        if retry_after is not None and retry_after > 0:
            self._resume_at = max(self._resume_at, now + retry_after)
            self._generation += 1
        window = max(1.0, retry_after or 0.0)
        if now - self._last_decrease < window:
            self._last_change = now  # still refused: postpone recovery
            return
        self._last_decrease = now
        self._set_rate(max(self._floor, self._rate * self._decrease), now)

    def succeeded(self) -> None:
        """A request went through: creep back toward the configured rate."""
        if self._rate >= self._rps:
            return
        now = self._now()
        if now - self._last_change < self._recover_after:
            return
        self._set_rate(min(self._rps, self._rate + self._rps * self._recover_step), now)

    def _set_rate(self, rate: float, now: float) -> None:
        self._last_change = now
        if rate == self._rate:
            return
        self._rate = rate
        self._generation += 1
        # The new schedule starts one new interval after the last request let through.
        self._next_slot = self._last_grant + self._interval()
