"""AdaptiveLimiter: even spacing, no burst at start, slow-down on 429, gradual recovery.

The event loop runs on virtual time (the loop's clock jumps to the next timer
instead of waiting), the technique aiolimiter's own tests and aiotools use, so
these tests take milliseconds.
"""

from __future__ import annotations

import asyncio

import pytest
import pytest_asyncio

from runner._limits import AdaptiveLimiter


class VirtualTime:
    """Makes the running loop's clock virtual: idle waits advance it instantly."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.now = 0.0
        self._loop = loop
        self._select = loop._selector.select  # type: ignore[attr-defined]
        loop.time = self.time  # type: ignore[method-assign]
        loop._selector.select = self._virtual_select  # type: ignore[attr-defined]

    def time(self) -> float:
        return self.now

    def _virtual_select(self, timeout=None):
        # Always tick a little: a leaky bucket can be a float rounding error short of
        # capacity when its timer fires, and real clocks always move on.
        self.now += timeout if timeout else 1e-9
        return self._select(0)

    def restore(self) -> None:
        del self._loop.time
        self._loop._selector.select = self._select  # type: ignore[attr-defined]


@pytest_asyncio.fixture
async def vt():
    clock = VirtualTime(asyncio.get_running_loop())
    yield clock
    clock.restore()


async def grant_times(limiter: AdaptiveLimiter, vt: VirtualTime, n: int) -> list[float]:
    """Start n tasks at once; return when each was let through."""
    times: list[float] = []

    async def one():
        async with limiter:
            times.append(round(vt.now, 6))

    async with asyncio.TaskGroup() as tg:
        for _ in range(n):
            tg.create_task(one())
    return sorted(times)


def gaps(times: list[float]) -> list[float]:
    return [round(b - a, 6) for a, b in zip(times, times[1:])]


async def test_requests_are_evenly_spaced_with_no_burst_at_start(vt):
    """Ten tasks at 5 rps: the first goes at once, then one every 0.2 s, never two together."""
    limiter = AdaptiveLimiter(5)
    times = await grant_times(limiter, vt, 10)
    assert times[0] == 0.0
    assert gaps(times) == [0.2] * 9


async def test_throttled_cuts_the_rate_by_a_fifth_and_widens_the_spacing(vt):
    """After a 429 the rate drops to 80 %, and requests queued afterwards go out further apart."""
    limiter = AdaptiveLimiter(10)
    await grant_times(limiter, vt, 3)
    limiter.throttled(None)
    assert limiter.rate == 8
    times = await grant_times(limiter, vt, 5)
    assert gaps(times) == [0.125] * 4


async def test_throttle_applies_to_tasks_already_waiting(vt):
    """Tasks queued before the 429 also slow down: none goes out faster than the new rate."""
    limiter = AdaptiveLimiter(10)
    times: list[float] = []

    async def one():
        async with limiter:
            times.append(vt.now)

    async def throttle_after_first():
        while not times:
            await asyncio.sleep(0)
        limiter.throttled(None)

    async with asyncio.TaskGroup() as tg:
        for _ in range(6):
            tg.create_task(one())
        tg.create_task(throttle_after_first())
    assert min(gaps(sorted(times))) >= 0.125 - 1e-9


async def test_retry_after_holds_every_request_until_then(vt):
    """throttled(retry_after=3) lets nobody through for three seconds."""
    limiter = AdaptiveLimiter(10)
    await grant_times(limiter, vt, 1)
    start = vt.now
    limiter.throttled(3.0)
    times = await grant_times(limiter, vt, 3)
    assert times[0] >= round(start + 3.0, 6)
    assert gaps(times) == [0.125, 0.125]


async def test_rate_never_falls_below_the_floor(vt):
    """Repeated 429s, a second or more apart, stop cutting at the floor."""
    limiter = AdaptiveLimiter(4, floor=0.5)
    for _ in range(10):
        limiter.throttled(None)
        vt.now += 1.5
    assert limiter.rate == 0.5


async def test_a_burst_of_refusals_cuts_only_once(vt):
    """Several 429s arriving together (one per request in flight) count as one slow-down."""
    limiter = AdaptiveLimiter(16)
    for _ in range(5):
        limiter.throttled(None)
    assert limiter.rate == pytest.approx(12.8)


async def test_429s_a_second_apart_cut_the_rate_geometrically(vt):
    """A quota really below the configured rate is found fast: each further second of 429s cuts again."""
    limiter = AdaptiveLimiter(20)
    for _ in range(3):
        limiter.throttled(None)
        vt.now += 1.01
    assert limiter.rate == pytest.approx(20 * 0.8**3)


async def test_succeeded_recovers_gradually_to_the_configured_rate(vt):
    """Success adds `recover_step` of the configured rate back per recovery interval, up to the configured rate."""
    limiter = AdaptiveLimiter(10, recover_after=5.0, decrease=0.5, recover_step=0.1)
    limiter.throttled(None)
    assert limiter.rate == 5
    limiter.succeeded()
    assert limiter.rate == 5, "no recovery before the interval has passed"
    seen = []
    for _ in range(8):
        vt.now += 5.0
        limiter.succeeded()
        seen.append(limiter.rate)
    assert seen == [6, 7, 8, 9, 10, 10, 10, 10]
    assert limiter.configured_rate == 10


async def test_recovered_rate_spaces_requests_again(vt):
    """Once recovered, requests are spaced by the configured rate again."""
    limiter = AdaptiveLimiter(10, recover_after=1.0)
    limiter.throttled(None)
    for _ in range(5):
        vt.now += 1.5
        limiter.succeeded()
    assert limiter.rate == 10
    times = await grant_times(limiter, vt, 4)
    assert gaps(times) == [0.1] * 3


def test_limiter_rejects_nonsense_rates():
    """A rate of zero or less is a configuration bug."""
    with pytest.raises(ValueError):
        AdaptiveLimiter(0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(5, floor=0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(5, decrease=1.0)
    with pytest.raises(ValueError):
        AdaptiveLimiter(5, recover_step=0)


def test_injected_clock_is_used_outside_a_loop():
    """With an injected clock, throttle bookkeeping works without a running loop."""
    now = [100.0]
    limiter = AdaptiveLimiter(8, clock=lambda: now[0], recover_after=2.0)
    limiter.throttled(None)
    assert limiter.rate == pytest.approx(6.4)
    now[0] += 2.0
    limiter.succeeded()
    assert limiter.rate == pytest.approx(6.8)


async def test_a_late_wake_up_does_not_push_later_slots_back(vt):
    """A waiter woken 30 ms late (the loop was busy past its slot) costs no throughput: the next keep the schedule."""
    limiter = AdaptiveLimiter(10)
    times: list[float] = []

    async def one(late: float) -> None:
        async with limiter:
            times.append(round(vt.now, 6))
            vt.now += late  # the loop was busy right after this grant

    async with asyncio.TaskGroup() as tg:
        for late in (0.0, 0.13, 0.0, 0.0, 0.0):
            tg.create_task(one(late))
    assert times == [0.0, 0.1, 0.23, 0.3, 0.4]


async def test_an_idle_limiter_banks_no_credit(vt):
    """After a quiet spell the next requests are spaced again, not let through in a burst."""
    limiter = AdaptiveLimiter(10)
    await grant_times(limiter, vt, 2)
    vt.now += 5.0
    times = await grant_times(limiter, vt, 4)
    assert gaps(times) == [0.1] * 3


async def test_catching_up_after_a_stall_never_overruns_the_quota(vt):
    """Slots missed during a stall go out at once, but never more than `rps` in any second."""
    limiter = AdaptiveLimiter(4)
    times: list[float] = []

    async def one(stall: float) -> None:
        async with limiter:
            times.append(round(vt.now, 6))
            if stall:
                await asyncio.sleep(0)  # let the others take their slots first
                vt.now += stall  # then the loop is blocked for a while

    async with asyncio.TaskGroup() as tg:
        for stall in (0.6, 0, 0, 0, 0, 0, 0):
            tg.create_task(one(stall))
    assert times[1] == times[2] == 0.6, "the two slots missed in the stall are caught up"
    assert all(sum(1 for t in times if start <= t < start + 1.0) <= 4 for start in times)


async def test_pacing_spaces_requests_a_little_under_the_quota(vt):
    """pacing=0.8 at 10/s spaces requests 0.125 s apart."""
    limiter = AdaptiveLimiter(10, pacing=0.8)
    times = await grant_times(limiter, vt, 4)
    assert gaps(times) == [0.125] * 3


async def test_probe_first_sends_the_first_request_alone(vt):
    """With probe_first the schedule starts when the first request is answered, not when it left."""
    limiter = AdaptiveLimiter(10, probe_first=True)
    times: list[float] = []

    async def one(answer_after: float) -> None:
        async with limiter:
            times.append(round(vt.now, 6))
            await asyncio.sleep(answer_after)

    async with asyncio.TaskGroup() as tg:
        for answer_after in (0.3, 0, 0, 0):
            tg.create_task(one(answer_after))
    assert times == [0.0, 0.4, 0.5, 0.6]


async def test_probe_first_also_releases_when_the_first_request_fails(vt):
    """An exception inside the first request still starts the schedule for the others."""
    limiter = AdaptiveLimiter(10, probe_first=True)

    async def failing() -> None:
        async with limiter:
            await asyncio.sleep(0.2)
            raise RuntimeError("refused")

    first = asyncio.create_task(failing())
    await asyncio.sleep(0)
    times = await grant_times(limiter, vt, 2)
    with pytest.raises(RuntimeError):
        await first
    assert times == [0.3, 0.4]
