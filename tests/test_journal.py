"""The journal: planning, resuming, transitions, upload cache, the campaign lock; and the pure schedule decisions."""

from __future__ import annotations

import random
import subprocess
import sys

import pytest

from runner._errors import LockHeld
from runner._journal import CampaignLock, Journal, PlannedJob
from runner._schedule import (
    DOWNLOAD_FAILED,
    Candidate,
    DueQueue,
    LostCreate,
    Resume,
    State,
    Verdict,
    backoff,
    exit_code_for,
    give_up_on_lost_create,
    match_lost_creates,
    next_poll_due,
    on_resume,
    on_task_failed,
    task_failure_retryable,
)


def body(prompt: str = "a horse", **params) -> dict:
    return {"model": "happyhorse-1.0-t2v", "input": {"prompt": prompt}, "parameters": {"duration": 5, **params}}


def planned(name: str, key: str = "k", prompt: str = "a horse") -> PlannedJob:
    return PlannedJob(name=name, key=key, model="happyhorse-1.0-t2v", body=body(prompt))


@pytest.fixture
def journal(tmp_path):
    j = Journal.open(tmp_path)
    yield j
    j.close()


def test_plan_inserts_new_jobs_in_queue_order(journal):
    """Planning inserts every job as new, and next_new hands them out in manifest order."""
    journal.plan([planned(f"j{i}") for i in range(1200)], "run1", max_attempts=3)
    first = journal.next_new("run1", 0, limit=5)
    assert [r.name for r in first] == ["j0", "j1", "j2", "j3", "j4"]
    rest = journal.next_new("run1", first[-1].seq, limit=5000)
    assert len(rest) == 1195
    assert journal.counts(plan="run1") == {"new": 1200}


def test_transition_records_history_and_known_task_ids(journal):
    """A transition updates the row, appends history, and remembers the task id for good."""
    journal.plan([planned("a")], "r", max_attempts=3)
    journal.transition("a", State.SUBMITTING, attempts=1, submitted_at=10.0, sent_body=body())
    journal.transition("a", State.PENDING, task_id="t-1", accepted_at=11.0)
    row = journal.get("a")
    assert row.state is State.PENDING and row.task_id == "t-1" and row.attempts == 1
    assert row.sent_body == body()
    assert [h.state for h in journal.history("a")] == ["new", "submitting", "pending"]
    assert journal.known_task_ids() == {"t-1"}


def test_transition_rejects_unknown_columns_and_jobs(journal):
    """A typo in a column name or a job name is a bug, not a silent no-op."""
    journal.plan([planned("a")], "r", max_attempts=3)
    with pytest.raises(ValueError):
        journal.transition("a", State.PENDING, taskid="x")
    with pytest.raises(KeyError):
        journal.transition("nope", State.PENDING)


def test_requeue_moves_job_to_back_of_queue(journal):
    """A job sent back to new gets a seq after every other job."""
    journal.plan([planned("a"), planned("b")], "r", max_attempts=3)
    journal.transition("a", State.NEW)
    assert [r.name for r in journal.next_new("r", 0)] == ["b", "a"]


def test_replan_same_key_keeps_in_flight_task(journal):
    """Re-planning a journalled job with the same key keeps its state and task id."""
    journal.plan([planned("a")], "r1", max_attempts=3)
    journal.transition("a", State.RUNNING, task_id="t-1")
    journal.plan([planned("a")], "r2", max_attempts=3)
    row = journal.get("a")
    assert row.state is State.RUNNING and row.task_id == "t-1" and row.plan == "r2"


def test_replan_changed_key_starts_over_unless_in_flight(journal):
    """A job whose request changed starts over as new; one still in flight is left to finish."""
    journal.plan([planned("a"), planned("b")], "r1", max_attempts=3)
    journal.transition("a", State.FAILED, error_code="InvalidParameter")
    journal.transition("b", State.PENDING, task_id="t-b")
    journal.plan([planned("a", key="k2"), planned("b", key="k2")], "r2", max_attempts=3)
    assert journal.get("a").state is State.NEW and journal.get("a").key == "k2"
    assert journal.get("b").state is State.PENDING and journal.get("b").key == "k"


def test_replan_requeues_retryable_failure_within_attempts(journal):
    """A retryable failure with attempts left is sent again; one out of attempts is kept failed."""
    journal.plan([planned("a"), planned("b"), planned("c")], "r1", max_attempts=3)
    journal.transition("a", State.FAILED, attempts=1, retryable=True, error_code="InternalError")
    journal.transition("b", State.FAILED, attempts=3, retryable=True, error_code="InternalError")
    journal.transition("c", State.FAILED, attempts=1, retryable=False, error_code="DataInspectionFailed")
    journal.plan([planned("a"), planned("b"), planned("c")], "r2", max_attempts=3)
    assert journal.get("a").state is State.NEW and journal.get("a").attempts == 1
    assert journal.get("b").state is State.FAILED
    assert journal.get("c").state is State.FAILED


def test_replan_repolls_done_job_whose_file_is_damaged(journal):
    """A done job whose file fails the integrity check is polled again for a fresh URL."""
    journal.plan([planned("a"), planned("b")], "r1", max_attempts=3)
    journal.transition("a", State.DONE, task_id="t-a", sha256="x")
    journal.transition("b", State.DONE, task_id="t-b", sha256="y")
    journal.plan([planned("a"), planned("b")], "r2", max_attempts=3, file_intact=lambda row: row.name == "b")
    assert journal.get("a").state is State.RUNNING
    assert journal.get("b").state is State.DONE


def test_readonly_journal_reads_while_writer_is_open(tmp_path, journal):
    """The status command's read-only view sees the writer's committed rows."""
    journal.plan([planned("a")], "r1", max_attempts=3)
    with Journal.open(tmp_path, readonly=True) as ro:
        assert ro.counts() == {"new": 1}
        with pytest.raises(Exception):
            ro.transition("a", State.PENDING)


def test_readonly_journal_missing_raises(tmp_path):
    """Reading a campaign that never ran is an error, not an empty journal created on disk."""
    with pytest.raises(FileNotFoundError):
        Journal.open(tmp_path / "none", readonly=True)
    assert not (tmp_path / "none").exists()


def test_upload_cache_honours_expiry(journal):
    """An upload is reused for the same content and model until it expires."""
    journal.record_upload("h1", "m", "oss://x", expires_at=100.0)
    assert journal.find_upload("h1", "m", now=50.0) == "oss://x"
    assert journal.find_upload("h1", "m", now=100.0) is None
    assert journal.find_upload("h1", "other", now=50.0) is None


def test_lock_excludes_second_holder(tmp_path):
    """A second lock on the same campaign raises LockHeld; after release it can be taken."""
    with CampaignLock(tmp_path):
        with pytest.raises(LockHeld):
            CampaignLock(tmp_path).acquire()
    with CampaignLock(tmp_path):
        pass


def test_lock_held_by_other_process(tmp_path):
    """The lock is visible across processes."""
    code = (
        "import sys,time; from runner._journal import CampaignLock; "
        f"l=CampaignLock(__import__('pathlib').Path({str(tmp_path)!r})); l.acquire(); print('ok', flush=True); "
        "sys.stdin.read()"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ok"
        with pytest.raises(LockHeld, match=f"pid {proc.pid}"):
            CampaignLock(tmp_path).acquire()
    finally:
        proc.stdin.close()
        proc.wait(10)


# --- pure decisions --------------------------------------------------------------

def test_task_failure_retryable_codes():
    """Server hiccups are worth a retry; content and parameter refusals are not."""
    assert task_failure_retryable("InternalError.Algo")
    assert task_failure_retryable("Throttling.RateQuota")
    assert not task_failure_retryable("DataInspectionFailed")
    assert not task_failure_retryable("InvalidParameter")
    assert not task_failure_retryable(None)


def test_on_task_failed_respects_max_attempts():
    """A retryable failure is retried only while attempts remain."""
    assert on_task_failed("InternalError", 1, 3) is Verdict.RETRY
    assert on_task_failed("InternalError", 3, 3) is Verdict.FAIL
    assert on_task_failed("DataInspectionFailed", 1, 3) is Verdict.FAIL


def test_next_poll_due_counts_from_start_not_end():
    """The next poll is due an interval after the previous one started, within the jitter."""
    rng = random.Random(1)
    dues = [next_poll_due(100.0, 10.0, 0.1, rng) for _ in range(200)]
    assert all(109.0 <= d <= 111.0 for d in dues)
    assert len(set(dues)) > 1
    assert next_poll_due(100.0, 10.0, 0.0, rng) == 110.0


def test_backoff_grows_caps_and_honours_retry_after():
    """Backoff doubles per attempt up to the cap and never undercuts Retry-After."""
    rng = random.Random(2)
    assert 0.5 <= backoff(1, base=1, cap=30, rng=rng) <= 1
    assert 4 <= backoff(4, base=1, cap=30, rng=rng) <= 8
    assert 15 <= backoff(20, base=1, cap=30, rng=rng) <= 30
    assert backoff(1, base=1, cap=30, rng=rng, retry_after=7) == 7


def test_due_queue_orders_and_replaces():
    """The queue hands out entries by due time; pushing a name again replaces its entry."""
    q = DueQueue()
    q.push("a", 5.0)
    q.push("b", 3.0)
    q.push("a", 1.0, kind="reconcile")
    assert len(q) == 2 and q.next_due() == 1.0
    assert q.pop_due(0.5) is None
    assert q.pop_due(10) == ("reconcile", "a")
    assert q.pop_due(10) == ("poll", "b")
    assert q.pop_due(10) is None and len(q) == 0 and q.next_due() is None
    q.push("c", 2.0)
    q.discard("c")
    assert q.next_due() is None


def lost(name: str, at: float, prompt: str = "a horse") -> LostCreate:
    return LostCreate(name, "happyhorse-1.0-t2v", body(prompt), at)


def test_match_adopts_single_matching_candidate():
    """One listed task with our model, prompt and time is adopted; known tasks never are."""
    cands = [
        Candidate("t1", "happyhorse-1.0-t2v", 100.5, "a horse", {"duration": 5}),
        Candidate("t2", "happyhorse-1.0-t2v", 100.2, "a cow"),
        Candidate("t3", "happyhorse-1.0-i2v", 100.1, "a horse"),
        Candidate("t4", "happyhorse-1.0-t2v", 100.0, "a horse"),
    ]
    assert match_lost_creates([lost("j", 100.0)], cands, {"t4"}, window=30) == {"j": "t1"}


def test_match_rejects_other_parameters_and_far_times():
    """A task with other parameters or submitted outside the window is not ours."""
    cands = [
        Candidate("t1", "happyhorse-1.0-t2v", 100.0, "a horse", {"duration": 10}),
        Candidate("t2", "happyhorse-1.0-t2v", 500.0, "a horse"),
    ]
    assert match_lost_creates([lost("j", 100.0)], cands, set(), window=30) == {}


def test_match_never_gives_one_task_to_two_jobs():
    """Two identical lost creates take the two tasks nearest their own submit times."""
    cands = [Candidate("early", None, 100.1, None), Candidate("late", None, 110.2, None)]
    got = match_lost_creates([lost("b", 110.0), lost("a", 100.0)], cands, set(), window=30)
    assert got == {"a": "early", "b": "late"}
    one = match_lost_creates([lost("b", 110.0), lost("a", 100.0)], cands[:1], set(), window=30)
    assert one == {"a": "early"}


def test_give_up_on_lost_create_after_grace():
    """An unlisted create counts as never made only once the grace period has passed."""
    assert not give_up_on_lost_create(100.0, 110.0, 30)
    assert give_up_on_lost_create(100.0, 130.0, 30)
    assert give_up_on_lost_create(None, 0.0, 30)


@pytest.mark.parametrize(
    ("state", "kw", "expected"),
    [
        (State.DONE, {"file_intact": True, "has_task": True}, Resume.KEEP),
        (State.DONE, {"file_intact": False, "has_task": True}, Resume.REPOLL),
        (State.SUCCEEDED, {}, Resume.REPOLL),
        (State.FAILED, {"error_code": DOWNLOAD_FAILED, "has_task": True}, Resume.REPOLL),
        (State.FAILED, {"retryable": True, "attempts": 1}, Resume.REQUEUE),
        (State.FAILED, {"retryable": True, "attempts": 3}, Resume.KEEP),
        (State.EXPIRED, {}, Resume.KEEP),
        (State.EXPIRED, {"recreate_expired": True}, Resume.REQUEUE),
        (State.PENDING, {"has_task": True}, Resume.KEEP),
        (State.SUBMITTING, {}, Resume.KEEP),
    ],
)
def test_on_resume(state, kw, expected):
    """Each journalled state resumes the documented way."""
    args = {"attempts": 1, "max_attempts": 3, "retryable": False, "error_code": None, "has_task": False,
            "file_intact": True, "recreate_expired": False, **kw}
    assert on_resume(state, **args) is expected


def test_exit_code_for():
    """Interrupted beats account error beats failed jobs beats success."""
    assert exit_code_for({"done": 3}, account_error=False, interrupted=False) == 0
    assert exit_code_for({"done": 3, "failed": 1}, account_error=False, interrupted=False) == 1
    assert exit_code_for({"done": 3, "new": 1}, account_error=True, interrupted=False) == 5
    assert exit_code_for({"done": 3}, account_error=True, interrupted=True) == 3


def test_match_without_time_window_follows_send_order():
    """With a server clock that cannot be compared, identical lost creates adopt tasks in the order they were sent."""
    cands = [Candidate("second", None, 9000.0, None), Candidate("first", None, 5000.0, None)]
    got = match_lost_creates([lost("b", 110.0), lost("a", 100.0)], cands, set(), window=None)
    assert got == {"a": "first", "b": "second"}
