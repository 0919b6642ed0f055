"""Retry policy: backoff arithmetic, what may be retried, and the retry loop."""

from __future__ import annotations

import pytest

from runner._errors import (
    AccountError,
    ApiError,
    RequestRejected,
    Throttled,
    TransientError,
)
from runner._retry import RetryPolicy, backoff_delay, is_retryable, retry_call

NO_JITTER = RetryPolicy(attempts=6, base=1.0, cap=60.0, jitter=0.0)


def test_backoff_doubles_from_base_until_cap():
    """Without jitter the delay is base, 2*base, 4*base ... and stops growing at cap."""
    policy = RetryPolicy(base=1.0, cap=10.0, jitter=0.0)
    delays = [backoff_delay(n, policy) for n in range(1, 7)]
    assert delays == [1.0, 2.0, 4.0, 8.0, 10.0, 10.0]


def test_backoff_jitter_takes_a_random_share_off():
    """Jitter removes up to `jitter` of the delay: rand()=1 halves it at jitter 0.5, rand()=0 keeps it."""
    policy = RetryPolicy(base=2.0, cap=60.0, jitter=0.5)
    assert backoff_delay(3, policy, rand=lambda: 0.0) == 8.0
    assert backoff_delay(3, policy, rand=lambda: 1.0) == 4.0
    assert backoff_delay(3, policy, rand=lambda: 0.5) == 6.0


def test_backoff_never_exceeds_cap_whatever_the_jitter():
    """The cap bounds the jittered delay too."""
    policy = RetryPolicy(base=1.0, cap=5.0, jitter=1.0)
    assert all(backoff_delay(20, policy, rand=lambda r=r: r) <= 5.0 for r in (0.0, 0.3, 0.99))


def test_retry_after_is_a_floor_even_beyond_cap():
    """A server's Retry-After is honoured even when it is longer than cap, and ignored when shorter."""
    policy = RetryPolicy(base=1.0, cap=10.0, jitter=0.0)
    assert backoff_delay(1, policy, retry_after=30.0) == 30.0
    assert backoff_delay(4, policy, retry_after=0.5) == 8.0


def test_backoff_rejects_attempt_zero():
    """Attempts count from 1; 0 is a caller bug."""
    with pytest.raises(ValueError):
        backoff_delay(0, NO_JITTER)


def test_policy_validates_its_fields():
    """Nonsense policies are refused at construction."""
    with pytest.raises(ValueError):
        RetryPolicy(attempts=0)
    with pytest.raises(ValueError):
        RetryPolicy(jitter=1.5)


@pytest.mark.parametrize(
    ("exc", "is_create", "expected"),
    [
        (TransientError("5xx"), False, True),
        (TransientError("5xx"), True, False),
        (TransientError("refused", reached_server=False), True, True),
        (Throttled("429"), True, True),
        (Throttled("429"), False, True),
        (RequestRejected("400"), False, False),
        (AccountError("401"), False, False),
        (ApiError("malformed"), False, False),
        (ValueError("bug"), False, False),
    ],
)
def test_is_retryable(exc, is_create, expected):
    """Creates are retried only when nothing can have been created; other calls on any transient error."""
    assert is_retryable(exc, is_create=is_create) is expected


class Recorder:
    def __init__(self, outcomes):
        self.outcomes = list(outcomes)
        self.calls = 0
        self.slept: list[float] = []
        self.retries: list[tuple[int, str, float]] = []

    async def fn(self):
        self.calls += 1
        outcome = self.outcomes.pop(0)
        if isinstance(outcome, BaseException):
            raise outcome
        return outcome

    async def sleep(self, seconds):
        self.slept.append(seconds)

    def on_retry(self, attempt, exc, delay):
        self.retries.append((attempt, type(exc).__name__, delay))


async def test_retry_call_retries_transient_errors_then_returns():
    """Two 5xx then a success: three calls, two backoff sleeps, on_retry told each time."""
    rec = Recorder([TransientError("a"), TransientError("b"), "ok"])
    result = await retry_call(rec.fn, policy=NO_JITTER, sleep=rec.sleep, on_retry=rec.on_retry)
    assert result == "ok"
    assert rec.calls == 3
    assert rec.slept == [1.0, 2.0]
    assert rec.retries == [(1, "TransientError", 1.0), (2, "TransientError", 2.0)]


async def test_retry_call_honours_throttled_retry_after():
    """A 429's Retry-After becomes the sleep when it is longer than the backoff."""
    rec = Recorder([Throttled("slow down", retry_after=7.0), "ok"])
    assert await retry_call(rec.fn, policy=NO_JITTER, sleep=rec.sleep) == "ok"
    assert rec.slept == [7.0]


async def test_retry_call_never_repeats_a_create_that_reached_the_server():
    """A create that failed after reaching the server is raised at once, without sleeping."""
    rec = Recorder([TransientError("dropped"), "never"])
    with pytest.raises(TransientError):
        await retry_call(rec.fn, policy=NO_JITTER, is_create=True, sleep=rec.sleep)
    assert rec.calls == 1
    assert rec.slept == []


async def test_retry_call_repeats_a_create_that_never_left():
    """A create whose connection was refused is tried again."""
    rec = Recorder([TransientError("refused", reached_server=False), "created"])
    assert await retry_call(rec.fn, policy=NO_JITTER, is_create=True, sleep=rec.sleep) == "created"
    assert rec.calls == 2


async def test_retry_call_gives_up_after_attempts():
    """With attempts=3, the third failure is raised and only two sleeps happened."""
    rec = Recorder([TransientError("1"), TransientError("2"), TransientError("3"), "late"])
    policy = RetryPolicy(attempts=3, base=0.5, jitter=0.0)
    with pytest.raises(TransientError, match="3"):
        await retry_call(rec.fn, policy=policy, sleep=rec.sleep)
    assert rec.calls == 3
    assert rec.slept == [0.5, 1.0]


async def test_retry_call_raises_non_retryable_errors_at_once():
    """A 400 is not retried."""
    rec = Recorder([RequestRejected("bad"), "never"])
    with pytest.raises(RequestRejected):
        await retry_call(rec.fn, policy=NO_JITTER, sleep=rec.sleep)
    assert rec.calls == 1


async def test_retry_call_uses_injected_rand_for_jitter():
    """The jitter comes from the injected rand, so delays are reproducible."""
    rec = Recorder([TransientError("a"), "ok"])
    policy = RetryPolicy(base=4.0, jitter=0.5)
    await retry_call(rec.fn, policy=policy, sleep=rec.sleep, rand=lambda: 1.0)
    assert rec.slept == [2.0]
