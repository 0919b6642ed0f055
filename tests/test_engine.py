"""The engine against a fake client: ordering of journal writes, the in-flight cap, one poll loop."""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path

from runner._client import Downloaded, TaskInfo
from runner._engine import Engine, EngineOptions
from runner._errors import RequestRejected, TransientError
from runner._journal import Journal, PlannedJob
from runner._retry import RetryPolicy
from runner._schedule import State


class NoLimit:
    async def __aenter__(self) -> None:
        return None

    async def __aexit__(self, *exc: object) -> None:
        return None

    def throttled(self, retry_after: float | None = None) -> None:
        pass

    def succeeded(self) -> None:
        pass


def info(task_id: str, status: str, url: str | None = None) -> TaskInfo:
    return TaskInfo(task_id, status, url, None, None, {"output_video_duration": 3}, None, None, None, None,
                    {"output": {"task_id": task_id, "task_status": status}})


class FakeClient:
    """Tasks run for `polls` queries, then succeed; remembers what it saw."""

    def __init__(self, journal: Journal, polls: int = 2, reject: set[str] = frozenset()) -> None:
        self.journal = journal
        self.polls = polls
        self.reject = reject
        self.created: list[str] = []
        self.seen: dict[str, int] = {}
        self.outstanding = 0
        self.max_outstanding = 0
        self.max_tasks = 0
        self.states_at_post: list[str] = []

    async def create(self, body, *, oss_resolve=False, log=None):
        prompt = body["input"]["prompt"]
        self.states_at_post.append(self.journal.get(prompt).state)
        if prompt in self.reject:
            raise RequestRejected("InvalidParameter: no", status=400, code="InvalidParameter")
        task_id = f"t-{prompt}"
        self.created.append(task_id)
        self.seen[task_id] = 0
        self.outstanding += 1
        self.max_outstanding = max(self.max_outstanding, self.outstanding)
        return info(task_id, "PENDING")

    async def query(self, task_id, *, log=None):
        self.max_tasks = max(self.max_tasks, len(asyncio.all_tasks()))
        self.seen[task_id] += 1
        if self.seen[task_id] > self.polls:
            self.outstanding -= 1
            return info(task_id, "SUCCEEDED", f"http://x/{task_id}.mp4")
        return info(task_id, "RUNNING")

    async def download(self, url, dest, *, log=None):
        data = url.encode()
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(data)
        return Downloaded(Path(dest), len(data), hashlib.sha256(data).hexdigest())


def plan(journal: Journal, n: int) -> None:
    journal.plan(
        [PlannedJob(f"j{i}", "k", "happyhorse-1.0-t2v",
                    {"model": "happyhorse-1.0-t2v", "input": {"prompt": f"j{i}"}, "parameters": {}})
         for i in range(n)],
        "r", max_attempts=3,
    )


def engine(journal: Journal, client, tmp_path: Path, **opts) -> Engine:
    options = EngineOptions(**{"max_in_flight": 5, "poll_interval": 0.001, "retry": RetryPolicy(base=0.001), **opts})
    return Engine(journal=journal, client=client, run_id="r", output_dir=tmp_path, options=options,
                  submit_limiter=NoLimit(), query_limiter=NoLimit())


async def test_submitting_is_journalled_before_the_post(tmp_path):
    """Every create is sent only after the journal says "submitting"."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 6)
        client = FakeClient(journal)
        await engine(journal, client, tmp_path).run()
        assert client.states_at_post == ["submitting"] * 6
        assert journal.counts() == {"done": 6}


async def test_in_flight_cap_is_never_exceeded(tmp_path):
    """No more than max_in_flight tasks are outstanding on the server at once."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 40)
        client = FakeClient(journal, polls=3)
        await engine(journal, client, tmp_path, max_in_flight=4).run()
        assert client.max_outstanding == 4
        assert len(client.created) == 40


async def test_one_poll_loop_not_a_coroutine_per_task(tmp_path):
    """With 150 tasks in flight, the number of asyncio tasks stays near the query concurrency, not the job count."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 300)
        client = FakeClient(journal, polls=5)
        await engine(journal, client, tmp_path, max_in_flight=150, query_concurrency=8).run()
        assert client.max_outstanding == 150
        assert client.max_tasks < 40
        assert journal.counts() == {"done": 300}


async def test_rejected_request_fails_that_job_only(tmp_path):
    """A 400 fails its job with the server's message; the others finish."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 3)
        client = FakeClient(journal, reject={"j1"})
        await engine(journal, client, tmp_path).run()
        row = journal.get("j1")
        assert row.state is State.FAILED and row.error_code == "InvalidParameter" and "no" in row.error_message
        assert journal.counts() == {"done": 2, "failed": 1}


async def test_create_that_may_have_reached_server_is_not_retried(tmp_path):
    """A create failing after it reached the server is not sent again blindly: it is reconciled."""

    class Flaky(FakeClient):
        async def create(self, body, *, oss_resolve=False, log=None):
            await super().create(body)
            raise TransientError("the server closed the connection")

        async def list_tasks(self, **kw):
            return [info(t, "PENDING") for t in self.created], len(self.created)

    with Journal.open(tmp_path) as journal:
        plan(journal, 1)
        client = Flaky(journal)
        await engine(journal, client, tmp_path, reconcile_delay=0.001).run()
        assert client.created == ["t-j0"]
        assert journal.get("j0").state is State.DONE and journal.get("j0").task_id == "t-j0"


async def test_stop_leaves_journal_resumable(tmp_path):
    """stop() ends the run promptly as interrupted; a new engine finishes the same tasks without creating more."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 10)
        client = FakeClient(journal, polls=10**9)
        eng = engine(journal, client, tmp_path, max_in_flight=3)
        task = asyncio.create_task(eng.run())
        while len(client.created) < 3:
            await asyncio.sleep(0.001)
        eng.stop()
        result = await asyncio.wait_for(task, 5)
        assert result.interrupted
        created = list(client.created)
        client.polls = 1
        await engine(journal, client, tmp_path, max_in_flight=3).run()
        assert journal.counts() == {"done": 10}
        assert client.created[:3] == created[:3] and len(client.created) == 10


class SlowLimit(NoLimit):
    """Lets one request through every few loop turns; counts who is waiting for it."""

    def __init__(self) -> None:
        self.waiting = 0
        self.max_waiting = 0

    async def __aenter__(self) -> None:
        self.waiting += 1
        self.max_waiting = max(self.max_waiting, self.waiting)
        for _ in range(5):
            await asyncio.sleep(0)
        self.waiting -= 1


async def test_submissions_waiting_for_the_limiter_are_bounded(tmp_path):
    """However large max_in_flight is, only `submit_ahead` submissions wait for their slot at once."""
    with Journal.open(tmp_path) as journal:
        plan(journal, 60)
        client = FakeClient(journal)
        limiter = SlowLimit()
        options = EngineOptions(max_in_flight=1000, submit_ahead=4, poll_interval=0.001, retry=RetryPolicy(base=0.001))
        await Engine(journal=journal, client=client, run_id="r", output_dir=tmp_path, options=options,
                     submit_limiter=limiter, query_limiter=NoLimit()).run()
        assert limiter.max_waiting == 4
        assert journal.counts() == {"done": 60}
