"""The run/status/cancel commands, credentials and the progress display."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import yaml

from runner._cli import main
from runner._client import DashScopeClient
from runner._credentials import HOW_TO_SET, load_api_key, parse_credentials
from runner._journal import CampaignLock, Journal, PlannedJob
from runner._progress import Progress, Snapshot, plain_line, rate_and_eta
from runner._run_cli import _cancel
from runner._schedule import State
from runner._sim import SimConfig, Simulator

KEY = "sk-cli-test-777"


def write_manifest(folder: Path, jobs: list[dict] | None = None, **extra) -> Path:
    doc = {"campaign": "cli", "base_url": "http://127.0.0.1:9/api/v1", "output_dir": str(folder / "out"),
           "jobs": jobs or [{"name": "a", "model": "happyhorse-1.0-t2v", "prompt": "x"}], **extra}
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


@pytest.fixture
def no_key(monkeypatch, tmp_path):
    monkeypatch.delenv("DASHSCOPE_API_KEY", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))


def test_invalid_manifest_exits_2_and_sends_nothing(tmp_path, capsys):
    """A manifest with an error exits 2 with the problem, before any journal or lock exists."""
    path = write_manifest(tmp_path, [{"name": "a", "model": "happyhorse-1.0-t2v", "duration": 99}])
    assert main([str(path)]) == 2
    assert "duration" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_missing_key_exits_2_with_how_to(tmp_path, capsys, no_key):
    """Without a key and without --simulate the run explains how to set one, exit 2."""
    assert main([str(write_manifest(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "DASHSCOPE_API_KEY" in err and "--simulate" in err and len(err.strip().splitlines()) == 1


def test_simulate_runs_without_key(tmp_path, capsys, no_key):
    """--simulate runs the campaign against the built-in simulator with a throwaway key."""
    path = write_manifest(tmp_path)
    assert main([str(path), "--simulate", "--progress", "off", "--poll-interval", "0.05"]) == 0
    assert (tmp_path / "out" / "videos" / "a.mp4").stat().st_size > 0


def test_status_reads_journal_while_lock_held(tmp_path, capsys):
    """status shows counts and jobs from the journal, read-only, even while a run holds the lock."""
    path = write_manifest(tmp_path)
    out = tmp_path / "out"
    with Journal.open(out) as j:
        j.plan([PlannedJob("a", "k", "happyhorse-1.0-t2v", {"model": "m"})], "r1", max_attempts=3)
        j.transition("a", State.FAILED, error_code="DataInspectionFailed", error_message="refused")
    with CampaignLock(out):
        assert main(["status", str(path)]) == 0
    text = capsys.readouterr().out
    assert "failed" in text and "DataInspectionFailed" in text and "in progress" in text


def test_status_without_journal_exits_2(tmp_path, capsys):
    """status of a campaign that never ran says so, exit 2."""
    assert main(["status", str(write_manifest(tmp_path))]) == 2
    assert "has not run" in capsys.readouterr().err


async def test_cancel_cancels_pending_tasks(tmp_path):
    """cancel cancels the campaign's PENDING tasks; a task already running is reported, not cancelled."""
    async with Simulator(SimConfig(api_key=KEY, concurrency=1, time_scale=0.001)) as sim:
        async with DashScopeClient(sim.base_url, KEY) as client:
            body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "x"}, "parameters": {}}
            ids = [(await client.create(body)).task_id for _ in range(3)]
            sim.clock.advance(1.0)
            assert (await client.query(ids[0])).status == "RUNNING"  # the one generation slot is taken
            code = await _cancel(sim.base_url, KEY, [(f"j{i}", t) for i, t in enumerate(ids)])
            statuses = [(await client.query(t)).status for t in ids]
    assert statuses == ["RUNNING", "CANCELED", "CANCELED"]
    assert code == 1


# --- credentials -------------------------------------------------------------------

def test_key_from_environment_wins(tmp_path):
    """DASHSCOPE_API_KEY is used before the credentials file."""
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials").write_text("[default]\ndashscope_api_key = sk-file\n")
    assert load_api_key({"DASHSCOPE_API_KEY": "sk-env"}, tmp_path) == "sk-env"
    assert load_api_key({}, tmp_path) == "sk-file"
    assert load_api_key({}, tmp_path / "nowhere") is None


def test_credentials_file_not_utf8_counts_as_no_key(tmp_path):
    """A credentials file that is not UTF-8 gives no key instead of a UnicodeDecodeError traceback."""
    (tmp_path / ".alibabacloud").mkdir()
    (tmp_path / ".alibabacloud" / "credentials").write_bytes(b"\xff\xfe dashscope_api_key = sk-\x80\n")
    assert load_api_key({}, tmp_path) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("[default]\ndashscope_api_key = sk-1\n", "sk-1"),
        ("dashscope_api_key=sk-2\n", "sk-2"),
        ("[work]\ndashscope_api_key = 'sk-3'\n", "sk-3"),
        ("[default]\nother = 1\n", None),
        ("garbage without equals\n", None),
    ],
)
def test_parse_credentials(text, expected):
    """The credentials file is read with or without a section, tolerant of quotes and junk."""
    assert parse_credentials(text) == expected


def test_how_to_set_names_both_ways():
    """The missing-key message names the variable, the file and --simulate."""
    assert "DASHSCOPE_API_KEY" in HOW_TO_SET and "credentials" in HOW_TO_SET and "--simulate" in HOW_TO_SET


# --- progress ------------------------------------------------------------------------

def test_plain_progress_prints_on_change_and_every_n_seconds():
    """Off a terminal, a line is printed when the counts change and otherwise every `every` seconds."""
    now = [0.0]
    counts = {"new": 2}
    stream = io.StringIO()
    progress = Progress(lambda: Snapshot(dict(counts)), mode="auto", stream=stream, every=30, clock=lambda: now[0])
    assert progress.mode == "plain"
    progress.refresh()
    progress.refresh()
    now[0] = 10
    counts.update(new=1, done=1)
    progress.refresh()
    now[0] = 20
    progress.refresh()
    now[0] = 41
    progress.refresh()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 3
    assert all(ch.isprintable() for line in lines for ch in line)
    assert "1/2 finished" in lines[1]


def test_plain_line_strips_control_characters():
    """A failure message with control characters cannot corrupt a log line."""
    line = plain_line(Snapshot({"failed": 1}, [("j", "bad\x1b[31m\nthing")]), done_at_start=0, elapsed=1, stamp="t")
    assert all(ch.isprintable() for ch in line) and "last failure: j" in line


def test_rate_and_eta():
    """Rate counts only jobs finished in this run; ETA is what is left at that rate."""
    assert rate_and_eta(5, 5, 10, 60) == (None, None)
    rate, eta = rate_and_eta(15, 5, 25, 60)
    assert rate == pytest.approx(10) and eta == pytest.approx(60)


def test_off_mode_prints_nothing():
    """--progress off shows nothing."""
    stream = io.StringIO()
    progress = Progress(lambda: Snapshot({"new": 1}), mode="off", stream=stream)
    progress.refresh()
    assert stream.getvalue() == ""
