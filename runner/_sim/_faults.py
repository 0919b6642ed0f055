"""What the simulator gets wrong on purpose, and the pure decisions of when.

Every decision is a function of (seed, what, n): the n-th task, or the n-th
request of a kind. The same seed and the same sequence of requests give the
same faults, whatever the wall clock or the order of unrelated requests of
other kinds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeVar

#: request kinds the simulator logs
KINDS: tuple[str, ...] = ("create", "query", "cancel", "list", "policy", "upload", "download")

#: FAILED task codes and the message each one carries
FAILURES: dict[str, str] = {
    # worth a retry: the model itself hiccupped
    "InternalError.Algo": "An internal error occurred in the algorithm service, please try again later.",
    # not worth a retry: the content was refused
    "DataInspectionFailed": "Output data may contain inappropriate content.",
}

#: account-level refusals: code -> (HTTP status, message)
ACCOUNT_ERRORS: dict[str, tuple[int, str]] = {
    "Arrearage": (400, "Access denied, please make sure your account is in good standing."),
    "Throttling.AllocationQuota": (429, "Free allocated quota exceeded."),
}

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Faults:
    """Which faults to inject and how often. Rates are fractions in [0, 1].

    Request faults apply only to the request kinds listed in their `*_on`
    field (any of "create", "query", "download", "cancel", "list", "policy",
    "upload").
    """

    #: fraction of tasks that end FAILED instead of SUCCEEDED
    fail_rate: float = 0.0
    #: the codes a failed task is given (picked per task); keys of FAILURES
    fail_codes: tuple[str, ...] = ("InternalError.Algo", "DataInspectionFailed")
    #: fraction of SUCCEEDED tasks whose MP4 is not the requested length (usage still says it is)
    wrong_duration_rate: float = 0.0
    #: fraction of requests answered 500 InternalError (nothing is done)
    error_rate: float = 0.0
    error_on: tuple[str, ...] = ("create", "query", "download")
    #: fraction of requests whose connection is closed without an answer; a
    #: dropped create has already created its task (the client cannot know)
    drop_rate: float = 0.0
    drop_on: tuple[str, ...] = ("create", "query", "download")
    #: fraction of requests that start a burst of `throttle_burst` 429 Throttling.RateQuota answers
    throttle_rate: float = 0.0
    throttle_burst: int = 5
    throttle_on: tuple[str, ...] = ("create", "query")
    #: fraction of downloads sent at `slow_bytes_per_second` (real seconds)
    slow_rate: float = 0.0
    slow_bytes_per_second: float = 50_000.0
    #: fraction of downloads that announce the full Content-Length and close half-way
    truncate_rate: float = 0.0
    #: an account refusal for every create after the first `account_error_after`
    #: accepted ones: "Arrearage" (400) or "Throttling.AllocationQuota" (429)
    account_error: str | None = None
    account_error_after: int = 0

    def __post_init__(self) -> None:
        for name in ("fail_rate", "wrong_duration_rate", "error_rate", "drop_rate",
                     "throttle_rate", "slow_rate", "truncate_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {value}")
        for name in ("error_on", "drop_on", "throttle_on"):
            unknown = set(getattr(self, name)) - set(KINDS)
            if unknown:
                raise ValueError(f"{name}: unknown request kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        unknown_codes = set(self.fail_codes) - set(FAILURES)
        if unknown_codes or not self.fail_codes:
            raise ValueError(f"fail_codes must be among {', '.join(FAILURES)}")
        if self.account_error is not None and self.account_error not in ACCOUNT_ERRORS:
            raise ValueError(f"account_error must be one of {', '.join(ACCOUNT_ERRORS)}")
        if self.throttle_burst < 1 or self.account_error_after < 0:
            raise ValueError("throttle_burst must be >= 1 and account_error_after >= 0")


def uniform(seed: int, what: str, n: int) -> float:
    """A number in [0, 1) that depends only on (seed, what, n)."""
    digest = hashlib.blake2b(f"{seed}:{what}:{n}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def roll(seed: int, what: str, n: int, rate: float) -> bool:
    """True for about `rate` of all n: whether fault `what` hits the n-th task or request."""
    if rate <= 0.0:
        return False
    return rate >= 1.0 or uniform(seed, what, n) < rate


def pick(seed: int, what: str, n: int, options: Sequence[T]) -> T:
    """One of `options`, chosen by (seed, what, n)."""
    return options[int(uniform(seed, what, n) * len(options))]
