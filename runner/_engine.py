"""The engine: a thin asyncio loop that carries out `runner._schedule`'s decisions.

Three kinds of work run under one `asyncio.TaskGroup`:

* the submitter pulls new jobs from the journal in batches (never holding more
  than `max_in_flight` on the server), uploads local media, and POSTs each
  create under the submit limiter; "submitting" is journalled before the POST
  and the task id the moment it is accepted;
* the ONE poll loop keeps a heap of due times (`DueQueue`): it queries due tasks
  under the query limiter, and reconciles creates whose outcome is unknown
  through `list_tasks`, all in short-lived request tasks (no coroutine per job
  sleeping in a loop);
* downloads start the moment a task SUCCEEDED, bounded, each retried on its own.

Expected per-job failures are caught inside the job's task and journalled; only
bugs escape the group. Journal writes are synchronous and never await, so a
cancellation cannot cut one in half.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol

from ._errors import AccountError, ApiError, DownloadError, RequestRejected, Throttled, TransientError, UrlExpired
from ._journal import BATCH, Journal, JobRow
from ._retry import RetryPolicy, retry_call
from ._schedule import (
    DOWNLOAD_FAILED,
    IN_FLIGHT,
    POLLED,
    Candidate,
    DueQueue,
    LostCreate,
    State,
    Verdict,
    backoff,
    give_up_on_lost_create,
    match_lost_creates,
    next_poll_due,
    on_task_failed,
    task_failure_retryable,
)

#: the heap entry under which all lost creates are reconciled together
_RECONCILE = "\x00reconcile"
#: error code of a saved video that failed verification
VERIFICATION_FAILED = "VerificationFailed"


class _Stopped(Exception):
    """The run stopped before this job's create was sent; it stays new."""


class _Limiter(Protocol):
    async def __aenter__(self) -> None: ...
    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None: ...
    def throttled(self, retry_after: float | None = None) -> None: ...
    def succeeded(self) -> None: ...


class _RunLog(Protocol):
    def exchange(self, job_name: str, ex: Any) -> None: ...
    def event(self, job_name: str, **fields: Any) -> None: ...


class _NullLog:
    def exchange(self, job_name: str, ex: Any) -> None:
        pass

    def event(self, job_name: str, **fields: Any) -> None:
        pass


@dataclass(frozen=True, slots=True)
class EngineOptions:
    """How hard and how patiently one run drives the API."""

    max_in_flight: int = 10
    #: seconds between two polls of one task (real seconds)
    poll_interval: float = 15.0
    #: creates per job, the first one included, for FAILED tasks worth a retry
    max_attempts: int = 3
    #: re-create tasks whose id expired (UNKNOWN) instead of failing them
    recreate_expired: bool = False
    download_concurrency: int = 4
    #: submissions started but not yet let through by the submit limiter; more would only
    #: hold memory and delay the ones whose slot is due, however large max_in_flight is
    submit_ahead: int = 16
    query_concurrency: int = 16
    #: +/- share of poll_interval randomised so tasks do not poll in lockstep
    poll_jitter: float = 0.1
    #: how long a create that no listing shows stays "unknown" before it counts as never made
    reconcile_grace: float = 60.0
    #: first look at the listing after a create was lost, and the pause between looks
    reconcile_delay: float = 2.0
    #: the listing window reaches this far past now (servers whose clock runs ahead)
    list_horizon: float = 86400.0
    #: per-call retries of creates (only when provably not sent), queries, downloads
    retry: RetryPolicy = field(default_factory=RetryPolicy)


@dataclass(frozen=True, slots=True)
class Failure:
    """One job that failed in this run, for the progress display and the summary."""

    name: str
    code: str | None
    message: str


@dataclass(frozen=True, slots=True)
class EngineResult:
    """How a run ended."""

    interrupted: bool
    #: the account error that stopped submissions, if any
    account_error: AccountError | None


def video_stem(job_name: str) -> str:
    """The file-safe stem of a job's outputs (`videos/<stem>.mp4`), as the run log names it."""
    from ._runlog import log_file_name

    return log_file_name(job_name).removesuffix(".jsonl")


def _parse_stamp(text: str | None) -> float | None:
    """Seconds since the epoch of an API time: "YYYY-MM-DD hh:mm:ss.mmm" (UTC+8) or Unix ms."""
    if text is None:
        return None
    if isinstance(text, (int, float)):
        return float(text) / 1000.0
    try:
        moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S.%f")
    except ValueError:
        try:
            moment = datetime.strptime(text, "%Y-%m-%d %H:%M:%S")
        except ValueError:
            return None
    return moment.replace(tzinfo=timezone(timedelta(hours=8))).timestamp()


def _candidate(info: Any) -> Candidate:
    raw = info.raw if isinstance(info.raw, dict) else {}
    at = _parse_stamp(raw.get("gmt_create")) if raw.get("gmt_create") is not None else _parse_stamp(info.submit_time)
    params = raw.get("parameters") if isinstance(raw.get("parameters"), dict) else None
    return Candidate(
        task_id=info.task_id,
        model=raw.get("model_name") or raw.get("model"),
        submitted_at=at,
        prompt=raw.get("orig_prompt") if isinstance(raw.get("orig_prompt"), str) else None,
        parameters=params,
    )


def _task_facts(info: Any) -> dict[str, Any]:
    """What a video's report keeps of the task's answer."""
    raw = info.raw.get("output", {}) if isinstance(info.raw, dict) else {}
    keep = ("submit_time", "scheduled_time", "end_time", "orig_prompt", "actual_prompt", "code", "message")
    return {k: raw[k] for k in keep if raw.get(k) is not None}


class Engine:
    """Runs one plan of a campaign to completion (or to a stop) against one client.

    The journal must already hold the plan (`Journal.plan`). `jobs` maps job
    names to manifest jobs (needed for local-media upload and verification);
    `uploader` resolves local media (`resolve(job) -> (body, oss_resolve)`);
    `verify(path, job, task)` returns a reason to reject a saved video, or None.
    `clock` is monotonic seconds for scheduling, `wall` Unix seconds for the
    journal, `sleep` what waiting uses: all injectable.
    """

    def __init__(
        self,
        *,
        journal: Journal,
        client: Any,
        run_id: str,
        output_dir: Path,
        options: EngineOptions,
        submit_limiter: _Limiter,
        query_limiter: _Limiter,
        jobs: Mapping[str, Any] | None = None,
        uploader: Any = None,
        verify: Callable[[Path, Any, Any], str | None] | None = None,
        runlog: _RunLog | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
        on_job_end: Callable[[JobRow], None] | None = None,
    ) -> None:
        self._journal = journal
        self._client = client
        self._run_id = run_id
        self._videos = Path(output_dir) / "videos"
        self._opt = options
        self._submit_limiter = submit_limiter
        self._query_limiter = query_limiter
        self._jobs = jobs or {}
        self._uploader = uploader
        self._verify = verify
        self._log = runlog or _NullLog()
        self._clock = clock
        self._wall = wall
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._on_job_end = on_job_end

        self._queue = DueQueue()
        self._lost: dict[str, LostCreate] = {}
        #: jobs that hold (or may hold) a task on the server
        self._flying: set[str] = set()
        self._poll_errors: dict[str, int] = {}
        self._children: set[asyncio.Task[None]] = set()
        self._posting = 0
        #: submissions spawned that have not yet passed the submit limiter
        self._awaiting_slot = 0
        self._reconciling = False
        self._waiters: list[asyncio.Future[None]] = []
        self._submitter_done = False
        self._stopping = False
        self._account_error: AccountError | None = None
        self._query_slots = asyncio.Semaphore(options.query_concurrency)
        self._download_slots = asyncio.Semaphore(options.download_concurrency)
        #: the latest failures, newest last, for the progress display
        self.recent_failures: deque[Failure] = deque(maxlen=5)
        self.started_at = wall()

    # --- public ---------------------------------------------------------------

    async def run(self) -> EngineResult:
        """Submit, poll and download until every planned job is settled or the run is stopped.

        Returns how it ended; per-job outcomes are in the journal. Raises only
        for bugs (and CancelledError).
        """
        self._resume()
        async with asyncio.TaskGroup() as group:
            self._group = group
            group.create_task(self._submit_loop())
            group.create_task(self._poll_loop())
        return EngineResult(interrupted=self._stopping, account_error=self._account_error)

    def stop(self) -> None:
        """Stop at once: submit nothing more, abandon polls and downloads (the journal keeps them).

        Creates already on the wire finish, so their task ids are recorded.
        """
        if self._stopping:
            return
        self._stopping = True
        for task in list(self._children):
            if task.get_name() != "submit":
                task.cancel()
        self._fire()

    # --- waiting --------------------------------------------------------------

    def _fire(self) -> None:
        waiters, self._waiters = self._waiters, []
        for fut in waiters:
            if not fut.done():
                fut.set_result(None)

    async def _changed(self, timeout: float | None = None) -> None:
        """Wait until something changes (a job settles, a slot frees, a stop), or `timeout`."""
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiters.append(fut)
        if timeout is None:
            await fut
            return
        sleeper = asyncio.ensure_future(self._sleep(max(0.0, timeout)))
        try:
            await asyncio.wait({fut, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            sleeper.cancel()
            fut.cancel()

    def _idle(self) -> bool:
        return not self._children and not len(self._queue)

    def _spawn(self, coro: Coroutine[Any, Any, None], kind: str) -> None:
        task = self._group.create_task(coro, name=kind)
        self._children.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._children.discard(t)
            self._fire()

        task.add_done_callback(done)

    # --- resume ---------------------------------------------------------------

    def _resume(self) -> None:
        """Take over what the journal says is under way: poll, reconcile or download it."""
        now = self._clock()
        for row in self._journal.in_states(IN_FLIGHT | {State.SUCCEEDED}):
            if row.state in POLLED:
                self._flying.add(row.name)
                self._queue.push(row.name, now)
            elif row.state is State.SUCCEEDED:
                # a download was cut short: poll again for a fresh URL, then download
                self._journal.transition(row.name, State.RUNNING, detail={"resume": "refetch"})
                self._queue.push(row.name, now)
            else:
                self._flying.add(row.name)
                self._lose(row.name, row.model, row.sent_body or row.body, row.submitted_at, first_look=0.0)

    # --- submitting -----------------------------------------------------------

    async def _submit_loop(self) -> None:
        cursor = 0
        try:
            while not self._stopping and self._account_error is None:
                rows = self._journal.next_new(self._run_id, cursor, limit=min(BATCH, max(1, self._opt.max_in_flight * 2)))
                if not rows:
                    if self._idle() or self._stopping:
                        break
                    await self._changed()
                    continue
                for row in rows:
                    cursor = row.seq
                    while (
                        len(self._flying) >= self._opt.max_in_flight or self._awaiting_slot >= self._opt.submit_ahead
                    ) and not self._stopping and self._account_error is None:
                        await self._changed()
                    if self._stopping or self._account_error is not None:
                        break
                    self._flying.add(row.name)
                    self._awaiting_slot += 1
                    self._spawn(self._submit(row), "submit")
        finally:
            self._submitter_done = True
            self._fire()

    def _exchange_log(self, name: str) -> Callable[[Any], None]:
        return lambda ex: self._log.exchange(name, ex)

    async def _submit(self, row: JobRow) -> None:
        name = row.name
        sent = False
        settled = False
        awaiting_slot = True  # counted in self._awaiting_slot until the limiter lets it through
        try:
            job = self._jobs.get(name)
            body: dict[str, Any] = dict(row.body)
            oss = any(str(m.get("url", "")).startswith("oss://") for m in body.get("input", {}).get("media", []))
            if job is not None and getattr(job, "local_media", None) and self._uploader is not None:
                body, oss = await self._uploader.resolve(job)
            if self._stopping or self._account_error is not None:
                settled = True
                return

            async def attempt() -> Any:
                nonlocal sent, awaiting_slot
                async with self._submit_limiter:
                    if awaiting_slot:
                        awaiting_slot = False
                        self._awaiting_slot -= 1
                        self._fire()
                    while self._reconciling:  # a listing must not see a create it cannot attribute
                        await self._changed()
                    if not sent and (self._stopping or self._account_error is not None):
                        raise _Stopped
                    if not sent:
                        self._journal.transition(
                            name, State.SUBMITTING, attempts=row.attempts + 1, submitted_at=self._wall(), sent_body=body
                        )
                        self._log.event(name, event="submitting", attempt=row.attempts + 1)
                        sent = True
                    self._posting += 1
                    try:
                        return await self._client.create(body, oss_resolve=oss, log=self._exchange_log(name))
                    finally:
                        self._posting -= 1
                        self._fire()

            info = await retry_call(
                attempt, policy=self._opt.retry, is_create=True, sleep=self._sleep,
                on_retry=self._on_retry(name, self._submit_limiter),
            )
        except _Stopped:
            settled = True
        except AccountError as exc:
            # refused before anything was created: the job waits for the next run
            if sent:
                self._journal.transition(name, State.NEW, detail={"account_error": exc.message})
            settled = True
            self._account_failure(exc)
        except RequestRejected as exc:
            settled = True
            self._fail(name, exc.code or "RequestRejected", exc.message, retryable=False)
        except TransientError as exc:
            settled = True
            if sent and exc.reached_server and not isinstance(exc, Throttled):
                settled = False
                self._journal.transition(name, State.SUBMIT_UNKNOWN, detail={"error": exc.message})
                self._log.event(name, event="submit_unknown", error=exc.message)
                self._lose(name, row.model, body, self._wall())
            else:
                self._fail(name, exc.code or "NotSent", f"not submitted: {exc.message}", retryable=True)
        except ApiError as exc:
            # e.g. an answer without a task id: the task may exist
            settled = not sent
            if sent:
                self._journal.transition(name, State.SUBMIT_UNKNOWN, detail={"error": exc.message})
                self._lose(name, row.model, body, self._wall())
            else:
                self._fail(name, exc.code or "ApiError", exc.message, retryable=True)
        except asyncio.CancelledError:
            if not sent:
                settled = True
            raise
        else:
            self._submit_limiter.succeeded()
            self._journal.transition(
                name, State.PENDING, task_id=info.task_id, task_status=info.status, accepted_at=self._wall()
            )
            self._log.event(name, event="submitted", task_id=info.task_id)
            self._queue.push(name, self._clock() + self._opt.poll_interval)
        finally:
            if awaiting_slot:
                self._awaiting_slot -= 1
            if settled:
                self._flying.discard(name)
            self._fire()

    def _on_retry(self, name: str, limiter: _Limiter) -> Callable[[int, BaseException, float], None]:
        def note(attempt: int, exc: BaseException, delay: float) -> None:
            if isinstance(exc, Throttled):
                limiter.throttled(exc.retry_after)
            self._log.event(name, event="retry", attempt=attempt, error=str(exc), delay=round(delay, 3))

        return note

    def _account_failure(self, exc: AccountError) -> None:
        if self._account_error is None:
            self._account_error = exc
            self.recent_failures.append(Failure("(account)", exc.code, exc.message))
        self._fire()

    # --- the poll loop --------------------------------------------------------

    async def _poll_loop(self) -> None:
        while True:
            if self._stopping:
                return
            if self._submitter_done and self._idle():
                return
            now = self._clock()
            item = self._queue.pop_due(now)
            if item is None:
                due = self._queue.next_due()
                await self._changed(None if due is None else due - now)
                continue
            kind, name = item
            if kind == "reconcile":
                self._spawn(self._reconcile(), "reconcile")
                continue
            await self._query_slots.acquire()
            try:
                await self._query_limiter.__aenter__()
            except BaseException:
                self._query_slots.release()
                raise
            self._spawn(self._poll(name, self._clock()), "poll")

    async def _poll(self, name: str, started: float) -> None:
        try:
            row = self._journal.get(name)
            if row is None or row.task_id is None:
                return
            try:
                info = await self._client.query(row.task_id, log=self._exchange_log(name))
            except Throttled as exc:
                self._query_limiter.throttled(exc.retry_after)
                self._poll_later(name, exc)
                return
            except TransientError as exc:
                self._poll_later(name, exc)
                return
            except AccountError as exc:
                # polling is impossible without a working key: stop, the journal keeps everything
                self._account_failure(exc)
                self.stop()
                return
            except ApiError as exc:
                self._flying.discard(name)
                self._fail(name, exc.code or "QueryFailed", exc.message, retryable=False)
                return
            self._query_limiter.succeeded()
            self._poll_errors.pop(name, None)
            self._on_status(row, row.task_id, info, started)
        finally:
            self._query_slots.release()

    def _poll_later(self, name: str, exc: ApiError) -> None:
        n = self._poll_errors.get(name, 0) + 1
        self._poll_errors[name] = n
        retry_after = exc.retry_after if isinstance(exc, Throttled) else None
        delay = backoff(n, base=self._opt.retry.base, cap=max(self._opt.retry.cap, self._opt.poll_interval),
                        rng=self._rng, retry_after=retry_after)
        self._log.event(name, event="poll_error", error=exc.message, retry_in=round(delay, 3))
        self._queue.push(name, self._clock() + delay)

    def _on_status(self, row: JobRow, task_id: str, info: Any, started: float) -> None:
        """Act on a poll answer for `row`, whose `task_id` the caller has checked is set."""
        name, status = row.name, info.status
        if status in ("PENDING", "RUNNING"):
            if status != row.task_status or row.state is not State(status.lower()):
                self._journal.transition(name, State(status.lower()), task_status=status)
                self._log.event(name, event="status", status=status, task_id=row.task_id)
            self._queue.push(name, next_poll_due(started, self._opt.poll_interval, self._opt.poll_jitter, self._rng))
            return
        self._flying.discard(name)
        self._log.event(name, event="status", status=status, task_id=row.task_id)
        if status == "SUCCEEDED":
            self._journal.transition(
                name, State.SUCCEEDED, task_status=status, video_url=info.video_url, usage=info.usage,
                task=_task_facts(info),
            )
            self._spawn(self._download(name, task_id, info), "download")
        elif status == "FAILED":
            self._task_failed(row, info.code, info.message or "the task failed", info)
        elif status == "CANCELED":
            self._journal.transition(name, State.CANCELED, task_status=status, task=_task_facts(info),
                                     finished_at=self._wall())
            self._ended(name)
        else:  # UNKNOWN: the task id expired (24 h) or was never known
            self._expired(name)

    def _task_failed(self, row: JobRow, code: str | None, message: str, info: Any = None) -> None:
        name = row.name
        verdict = on_task_failed(code, row.attempts, self._opt.max_attempts)
        facts = _task_facts(info) if info is not None else None
        if verdict is Verdict.RETRY and not self._stopping and self._account_error is None:
            self._journal.transition(
                name, State.NEW, task_status="FAILED", error_code=code, error_message=message, task=facts,
                detail={"retry": code},
            )
            self._log.event(name, event="retry_task", code=code, message=message)
        else:
            self._fail(name, code, message, retryable=task_failure_retryable(code), task=facts, task_status="FAILED")

    def _expired(self, name: str) -> None:
        if self._opt.recreate_expired:
            self._journal.transition(name, State.NEW, task_status="UNKNOWN", detail={"recreate": "expired"})
            self._log.event(name, event="recreate_expired")
            return
        message = "the task id expired (UNKNOWN) before its video was saved; re-run with --recreate-expired to create it again"
        self._journal.transition(name, State.EXPIRED, task_status="UNKNOWN", error_code="TaskExpired",
                                 error_message=message, finished_at=self._wall())
        self.recent_failures.append(Failure(name, "TaskExpired", message))
        self._ended(name)

    def _fail(self, name: str, code: str | None, message: str, *, retryable: bool, **columns: Any) -> None:
        self._journal.transition(name, State.FAILED, error_code=code, error_message=message, retryable=retryable,
                                 finished_at=self._wall(), **columns)
        self._log.event(name, event="failed", code=code, message=message)
        self.recent_failures.append(Failure(name, code, message))
        self._ended(name)

    def _ended(self, name: str) -> None:
        if self._on_job_end is not None:
            row = self._journal.get(name)
            if row is not None:
                self._on_job_end(row)

    # --- downloads ------------------------------------------------------------

    async def _download(self, name: str, task_id: str, info: Any) -> None:
        async with self._download_slots:
            dest = self._videos / f"{video_stem(name)}.mp4"
            url = info.video_url
            refreshed = False
            while True:
                try:
                    if not url:
                        raise UrlExpired("the task answered without a video URL")
                    got = await retry_call(
                        lambda: self._client.download(url, dest, log=self._exchange_log(name)),
                        policy=self._opt.retry, sleep=self._sleep, on_retry=self._on_retry(name, self._query_limiter),
                    )
                    break
                except UrlExpired as exc:
                    if refreshed:
                        self._fail(name, DOWNLOAD_FAILED, str(exc), retryable=True)
                        return
                    refreshed = True
                    fresh = await self._refresh(name, task_id)
                    if fresh is None:
                        return
                    info, url = fresh, fresh.video_url
                except (DownloadError, ApiError) as exc:
                    self._fail(name, DOWNLOAD_FAILED, f"download failed: {exc}", retryable=True)
                    return
            job = self._jobs.get(name)
            reason = None
            if self._verify is not None and job is not None:
                reason = await asyncio.to_thread(self._verify, got.path, job, info)
            if reason:
                row = self._journal.get(name)
                assert row is not None
                # kept for inspection, never under the final name; the attempt counts toward max_attempts
                rejected = self._videos / "rejected" / f"{dest.stem}.attempt-{row.attempts}.mp4"
                rejected.parent.mkdir(parents=True, exist_ok=True)
                os.replace(got.path, rejected)
                self._log.event(name, event="rejected", path=str(rejected), reason=reason)
                self._task_failed(row, VERIFICATION_FAILED, f"the video did not verify: {reason}")
                return
            self._journal.transition(
                name, State.DONE, video_path=str(got.path), sha256=got.sha256, size=got.size, finished_at=self._wall()
            )
            self._log.event(name, event="saved", path=str(got.path), sha256=got.sha256, size=got.size)
            self._ended(name)

    async def _refresh(self, name: str, task_id: str) -> Any | None:
        """Query a task once more for a fresh video URL; None (and the job settled) if there is none."""
        try:
            async with self._query_limiter:
                info = await retry_call(
                    lambda: self._client.query(task_id, log=self._exchange_log(name)),
                    policy=self._opt.retry, sleep=self._sleep,
                )
        except AccountError as exc:
            self._account_failure(exc)
            self._fail(name, DOWNLOAD_FAILED, f"could not refresh the video URL: {exc}", retryable=True)
            return None
        except ApiError as exc:
            self._fail(name, DOWNLOAD_FAILED, f"could not refresh the video URL: {exc}", retryable=True)
            return None
        if info.status == "SUCCEEDED" and info.video_url:
            self._journal.transition(name, State.SUCCEEDED, video_url=info.video_url, detail={"refreshed_url": True})
            return info
        if info.status == "UNKNOWN":
            self._expired(name)
        else:
            self._fail(name, DOWNLOAD_FAILED, f"the task is {info.status}, not SUCCEEDED, on a second look",
                       retryable=False)
        return None

    # --- reconciling lost creates --------------------------------------------

    def _lose(self, name: str, model: str, body: Mapping[str, Any], submitted_at: float | None,
              *, first_look: float | None = None) -> None:
        self._lost[name] = LostCreate(name, model, dict(body), submitted_at if submitted_at is not None else self._wall())
        if _RECONCILE not in self._queue:
            delay = self._opt.reconcile_delay if first_look is None else first_look
            self._queue.push(_RECONCILE, self._clock() + delay, kind="reconcile")

    async def _reconcile(self) -> None:
        """Adopt listed tasks for lost creates; give up on those unlisted past the grace period."""
        self._reconciling = True
        try:
            while self._posting:
                await self._changed()
            lost = list(self._lost.values())
            if not lost:
                return
            try:
                candidates = await self._list_candidates(lost)
            except AccountError as exc:
                self._account_failure(exc)
                self.stop()
                return
            except ApiError as exc:
                for job in lost:
                    self._log.event(job.name, event="reconcile_error", error=exc.message)
                candidates = None
            if candidates is not None:
                known = self._journal.known_among(c.task_id for c in candidates)
                adopted = match_lost_creates(lost, candidates, known, window=None)
                now_wall = self._wall()
                for job in lost:
                    task_id = adopted.get(job.name)
                    if task_id is not None:
                        self._journal.transition(job.name, State.PENDING, task_id=task_id, accepted_at=now_wall,
                                                 detail={"reconciled": task_id})
                        self._log.event(job.name, event="reconciled", task_id=task_id)
                        del self._lost[job.name]
                        self._queue.push(job.name, self._clock())
                    elif give_up_on_lost_create(job.submitted_at, now_wall, self._opt.reconcile_grace):
                        self._journal.transition(job.name, State.NEW, detail={"reconciled": None})
                        self._log.event(job.name, event="not_created", note="no listed task matches; sending again")
                        del self._lost[job.name]
                        self._flying.discard(job.name)
        finally:
            self._reconciling = False
            if self._lost and not self._stopping:
                self._queue.push(_RECONCILE, self._clock() + self._opt.reconcile_delay, kind="reconcile")
            self._fire()

    async def _list_candidates(self, lost: list[LostCreate]) -> list[Candidate]:
        start = datetime.fromtimestamp(min(j.submitted_at for j in lost) - 300, timezone(timedelta(hours=8)))
        end = datetime.fromtimestamp(self._wall() + self._opt.list_horizon, timezone(timedelta(hours=8)))
        found: list[Candidate] = []
        for model in sorted({j.model for j in lost}):
            page = 1
            while True:
                async with self._query_limiter:
                    tasks, total = await retry_call(
                        lambda: self._client.list_tasks(start_time=start, end_time=end, model=model, page_no=page,
                                                        page_size=100),
                        policy=self._opt.retry, sleep=self._sleep,
                    )
                found.extend(_candidate(t) for t in tasks)
                if not tasks or page * 100 >= total:
                    break
                page += 1
        return found

