"""RunLog: one JSON line per exchange or event, appended, and never the API key."""

from __future__ import annotations

import json

from runner._client import Exchange
from runner._runlog import RunLog, log_file_name

KEY = "sk-runlog-0f9e8d7c6b5a"


def exchange(**overrides) -> Exchange:
    fields = dict(at=1767225600.0, method="GET", url="http://h/api/v1/tasks/t", request_headers={"Authorization": "Bearer ***"},
                  request_body=None, status=200, response_body={"output": {"task_status": "RUNNING"}},
                  error=None, elapsed=0.1234567)
    fields.update(overrides)
    return Exchange(**fields)


def lines(path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_exchanges_and_events_are_appended_as_json_lines(tmp_path):
    """Each call appends one parseable line with kind, job, timestamp and the fields given."""
    log = RunLog(tmp_path / "logs", KEY)
    log.event("job-a", event="submitted", task_id="t-1")
    log.exchange("job-a", exchange())
    log.close()
    first, second = lines(tmp_path / "logs" / "job-a.jsonl")
    assert first["kind"] == "event" and first["event"] == "submitted" and first["task_id"] == "t-1"
    assert first["job"] == "job-a" and first["ts"].endswith("+00:00")
    assert second["kind"] == "exchange" and second["status"] == 200 and second["method"] == "GET"
    assert second["at"].startswith("2026-01-01T00:00:00") and second["elapsed"] == 0.1235


def test_lines_are_flushed_before_close(tmp_path):
    """A line is on disk as soon as it is written (a crash loses nothing already logged)."""
    log = RunLog(tmp_path, KEY)
    log.event("j", event="polled")
    assert len(lines(tmp_path / "j.jsonl")) == 1
    log.close()


def test_reopening_appends_rather_than_truncates(tmp_path):
    """A second RunLog on the same folder (a resumed run) adds to the existing logs."""
    with RunLog(tmp_path, KEY) as log:
        log.event("j", event="first run")
    with RunLog(tmp_path, KEY) as log:
        log.event("j", event="second run")
    assert [entry["event"] for entry in lines(tmp_path / "j.jsonl")] == ["first run", "second run"]


def test_the_key_is_scrubbed_from_anything_that_slipped_through(tmp_path):
    """Even an unredacted exchange or an event holding the key is written with *** instead."""
    log = RunLog(tmp_path, KEY)
    log.exchange("j", exchange(request_headers={"Authorization": f"Bearer {KEY}"}, url=f"http://h/?k={KEY}",
                               response_body={"echo": KEY}))
    log.event("j", event="oops", detail=f"key was {KEY}", nested={"k": [KEY]})
    log.close()
    text = (tmp_path / "j.jsonl").read_text()
    assert KEY not in text
    assert text.count("***") >= 5


def test_many_jobs_do_not_hold_many_files_open(tmp_path):
    """Writing to hundreds of jobs keeps a bounded number of files open and loses no line."""
    log = RunLog(tmp_path, KEY)
    for round_no in range(2):
        for n in range(200):
            log.event(f"job-{n}", event="tick", round=round_no)
    assert len(log._files) <= 32
    log.close()
    assert all(len(lines(tmp_path / f"job-{n}.jsonl")) == 2 for n in range(200))


def test_job_names_become_safe_distinct_file_names(tmp_path):
    """Unsafe names are sanitised, and two names that sanitise alike still get different files."""
    assert log_file_name("hero-shot_01") == "hero-shot_01.jsonl"
    a, b = log_file_name("a/b"), log_file_name("a_b")
    assert a != b and "/" not in a
    assert "/" not in log_file_name("../../etc/passwd")
    log = RunLog(tmp_path, KEY)
    log.event("../escape", event="x")
    log.close()
    assert [p.parent for p in tmp_path.iterdir()] == [tmp_path]
    assert log.path_for("../escape").parent == tmp_path


def test_without_a_key_nothing_is_replaced(tmp_path):
    """With no key configured (simulator demo), lines are written unchanged."""
    log = RunLog(tmp_path, None)
    log.event("j", event="x", text="plain")
    log.close()
    assert lines(tmp_path / "j.jsonl")[0]["text"] == "plain"
