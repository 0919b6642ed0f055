"""Pure scheduling decisions of a run: job states, what to poll next, what to retry, what to adopt.

Nothing here touches the network, the clock or a file: every function takes the
facts it decides on (times, codes, attempt counts) and returns a decision, so
the engine (`runner._engine`) stays a thin loop that carries them out.

A job's life in the journal::

    new ─▶ submitting ─▶ pending ─▶ running ─▶ succeeded ─▶ done
     ▲         │            │          │            │
     │         ▼            └──────────┴─▶ failed / expired / canceled
     └── submit_unknown (POST outcome unknown; reconciled through list_tasks)
"""

from __future__ import annotations

import enum
import heapq
import itertools
import random
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._retry import RetryPolicy, backoff_delay


class State(enum.StrEnum):
    """Where a job stands; stored as text in the journal."""

    #: planned, not yet sent (or sent again after a retryable failure)
    NEW = "new"
    #: written just before the create POST; no task id known yet
    SUBMITTING = "submitting"
    #: the POST may or may not have created a task; reconciled through list_tasks
    SUBMIT_UNKNOWN = "submit_unknown"
    #: the task exists and waits on the server
    PENDING = "pending"
    #: the task is generating
    RUNNING = "running"
    #: the task succeeded; its video is being downloaded
    SUCCEEDED = "succeeded"
    #: the video is saved and its sha256 recorded
    DONE = "done"
    #: the job failed (`error_code`, `error_message` say why)
    FAILED = "failed"
    #: the task id expired (UNKNOWN) before the video was saved
    EXPIRED = "expired"
    #: the task was cancelled
    CANCELED = "canceled"


#: states that hold (or may hold) a task on the server
IN_FLIGHT: frozenset[State] = frozenset({State.SUBMITTING, State.SUBMIT_UNKNOWN, State.PENDING, State.RUNNING})
#: states with a task id that the poll loop follows
POLLED: frozenset[State] = frozenset({State.PENDING, State.RUNNING})
#: states a run ends in
TERMINAL: frozenset[State] = frozenset({State.DONE, State.FAILED, State.EXPIRED, State.CANCELED})
#: the order states are shown in
STATE_ORDER: tuple[State, ...] = tuple(State)

#: error code the engine records when a finished task's video could not be saved
DOWNLOAD_FAILED = "DownloadFailed"

#: FAILED-task codes worth creating the task again for (prefix match)
RETRYABLE_TASK_CODES: tuple[str, ...] = (
    "InternalError",
    "Throttling",
    "ServiceUnavailable",
    "SystemError",
    "Timeout",
    "RequestTimeOut",
    # a saved video that failed verification (see runner._verify): a new task may get it right
    "VerificationFailed",
)


def task_failure_retryable(code: str | None) -> bool:
    """True when a FAILED task with this `output.code` may succeed if created again.

    Server-side hiccups (InternalError*, Throttling*, timeouts) are; content and
    parameter refusals (DataInspectionFailed, InvalidParameter, ...) are not,
    and neither is a failure without a code.
    """
    if not code:
        return False
    return any(code.startswith(prefix) for prefix in RETRYABLE_TASK_CODES)


class Verdict(enum.StrEnum):
    """What to do with a job whose task FAILED."""

    RETRY = "retry"
    FAIL = "fail"


def on_task_failed(code: str | None, attempts: int, max_attempts: int) -> Verdict:
    """Retry a FAILED task only for a retryable code and while attempts remain."""
    if task_failure_retryable(code) and attempts < max_attempts:
        return Verdict.RETRY
    return Verdict.FAIL


# --- polling -----------------------------------------------------------------

def next_poll_due(started: float, interval: float, jitter: float, rng: random.Random) -> float:
    """When to poll a task next: `interval` after the poll *started* (no drift), +/- `jitter` of it."""
    spread = interval * jitter
    return started + interval + (rng.uniform(-spread, spread) if spread else 0.0)


def backoff(attempt: int, *, base: float, cap: float, rng: random.Random, retry_after: float | None = None) -> float:
    """Exponential delay before retry number `attempt` (1-based), half of it jittered, at least `retry_after`.

    The arithmetic is `runner._retry.backoff_delay`'s, the one the per-call retries use.
    """
    return backoff_delay(attempt, RetryPolicy(base=base, cap=cap, jitter=0.5), retry_after=retry_after, rand=rng.random)


@dataclass(order=True, slots=True)
class _Entry:
    due: float
    seq: int
    kind: str = field(compare=False)
    name: str = field(compare=False)


class DueQueue:
    """A heap of (due time, kind, job name): the one poll loop's agenda.

    `kind` is "poll" (query a task) or "reconcile" (look for a lost create).
    A job has at most one entry; pushing it again replaces the old one (the
    stale heap entry is skipped when it surfaces).
    """

    def __init__(self) -> None:
        self._heap: list[_Entry] = []
        self._live: dict[str, _Entry] = {}
        self._counter = itertools.count()

    def __len__(self) -> int:
        return len(self._live)

    def __contains__(self, name: object) -> bool:
        return name in self._live

    def push(self, name: str, due: float, kind: str = "poll") -> None:
        entry = _Entry(due, next(self._counter), kind, name)
        self._live[name] = entry
        heapq.heappush(self._heap, entry)

    def discard(self, name: str) -> None:
        self._live.pop(name, None)

    def _prune(self) -> None:
        while self._heap and self._live.get(self._heap[0].name) is not self._heap[0]:
            heapq.heappop(self._heap)

    def next_due(self) -> float | None:
        """The earliest due time, or None when empty."""
        self._prune()
        return self._heap[0].due if self._heap else None

    def pop_due(self, now: float) -> tuple[str, str] | None:
        """(kind, name) of the earliest entry due at `now`, removed; None if nothing is due."""
        self._prune()
        if not self._heap or self._heap[0].due > now:
            return None
        entry = heapq.heappop(self._heap)
        del self._live[entry.name]
        return entry.kind, entry.name


# --- reconciling creates whose outcome is unknown ----------------------------

@dataclass(frozen=True, slots=True)
class LostCreate:
    """A job whose create POST may have made a task: what was sent, and when."""

    name: str
    model: str
    body: Mapping[str, Any]
    submitted_at: float


@dataclass(frozen=True, slots=True)
class Candidate:
    """A task the list endpoint knows about, with what it reports of its request."""

    task_id: str
    model: str | None
    submitted_at: float | None
    prompt: str | None = None
    parameters: Mapping[str, Any] | None = None


def request_matches(lost: LostCreate, cand: Candidate, *, window: float | None) -> bool:
    """True when `cand` may be the task `lost` created.

    Same model (when listed), submitted within `window` seconds of our POST
    (when listed and `window` is given; None skips the check for servers whose
    clock cannot be compared with ours), and the same prompt and parameters
    where the listing shows them; absent facts do not disqualify.
    """
    if cand.model is not None and cand.model != lost.model:
        return False
    if window is not None and cand.submitted_at is not None and abs(cand.submitted_at - lost.submitted_at) > window:
        return False
    body_input = lost.body.get("input") or {}
    if cand.prompt is not None and cand.prompt != body_input.get("prompt", cand.prompt):
        return False
    if cand.parameters:
        sent = lost.body.get("parameters") or {}
        for key, value in cand.parameters.items():
            if key in sent and sent[key] != value:
                return False
    return True


def match_lost_creates(
    lost: Iterable[LostCreate],
    candidates: Iterable[Candidate],
    known_task_ids: Collection[str],
    *,
    window: float | None,
) -> dict[str, str]:
    """Job name -> task id for every lost create that a listed task can be adopted for.

    Tasks already in the journal are never adopted, and no task is given to two
    jobs. Lost creates are served in the order they were sent, each taking the
    earliest unclaimed task that fits it, so that identical requests sent one
    after the other adopt their tasks in the same order (this holds whatever
    the offset or speed of the server's clock). A job that no task fits is
    left out.
    """
    free = sorted(
        (c for c in candidates if c.task_id not in known_task_ids),
        key=lambda c: (c.submitted_at is None, c.submitted_at or 0.0, c.task_id),
    )
    adopted: dict[str, str] = {}
    taken: set[str] = set()
    for job in sorted(lost, key=lambda j: (j.submitted_at, j.name)):
        for cand in free:
            if cand.task_id not in taken and request_matches(job, cand, window=window):
                adopted[job.name] = cand.task_id
                taken.add(cand.task_id)
                break
    return adopted


def give_up_on_lost_create(submitted_at: float | None, now: float, grace: float) -> bool:
    """True when a lost create has stayed unlisted long enough to count as never created."""
    return submitted_at is None or now - submitted_at >= grace


# --- resuming ------------------------------------------------------------------

class Resume(enum.StrEnum):
    """What planning does with a job the journal already holds under the same key."""

    KEEP = "keep"  #: leave it as it is (in flight, done and intact, or failed for good)
    REQUEUE = "requeue"  #: send it again (state new)
    REPOLL = "repoll"  #: poll its task again to get a fresh video URL, then download


def on_resume(
    state: State,
    *,
    attempts: int,
    max_attempts: int,
    retryable: bool,
    error_code: str | None,
    has_task: bool,
    file_intact: bool,
    recreate_expired: bool,
) -> Resume:
    """The decision for one journalled job when a run starts again."""
    if state is State.DONE:
        return Resume.KEEP if file_intact else (Resume.REPOLL if has_task else Resume.REQUEUE)
    if state is State.SUCCEEDED:
        return Resume.REPOLL
    if state is State.FAILED:
        if error_code == DOWNLOAD_FAILED and has_task:
            return Resume.REPOLL
        if retryable and attempts < max_attempts:
            return Resume.REQUEUE
        return Resume.KEEP
    if state is State.EXPIRED:
        return Resume.REQUEUE if recreate_expired else Resume.KEEP
    return Resume.KEEP


def exit_code_for(counts: Mapping[str, int], *, account_error: bool, interrupted: bool) -> int:
    """The run's exit code: 3 interrupted, 5 account error, 1 any job not done, else 0."""
    if interrupted:
        return 3
    if account_error:
        return 5
    not_done = sum(n for state, n in counts.items() if state != State.DONE)
    return 1 if not_done else 0
