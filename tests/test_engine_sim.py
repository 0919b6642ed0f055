"""End to end against the in-process simulator: every model, faults, exit codes, the lock."""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path

import pytest
import yaml

from runner._cli import build_parser
from runner._journal import CampaignLock, Journal
from runner._manifest import load_manifest
from runner._run_cli import _run
from runner._sim import Faults, SimConfig, Simulator
from runner._verify import verify_video

ASSETS = Path(__file__).resolve().parent.parent / "jobs" / "assets"
KEY = "sk-test-engine-0123456789"

ALL_MODELS = [
    {"name": "t2v", "model": "happyhorse-1.0-t2v", "prompt": "a horse on a beach", "duration": 3},
    {"name": "i2v", "model": "happyhorse-1.0-i2v", "first_frame": str(ASSETS / "portrait.png"), "duration": 3},
    {"name": "r2v", "model": "happyhorse-1.0-r2v", "prompt": "character1 holds character2",
     "reference_images": [str(ASSETS / "ref-hero.png"), str(ASSETS / "ref-prop.jpg")], "duration": 3},
    {"name": "edit", "model": "happyhorse-1.0-video-edit", "prompt": "make it snow",
     "video": str(ASSETS / "edit-input.mp4")},
    {"name": "wan", "model": "wan2.7-i2v", "prompt": "waves", "first_frame": str(ASSETS / "wan-first.png"),
     "last_frame": str(ASSETS / "wan-last.png"), "duration": 3},
]


def t2v_jobs(n: int, prefix: str = "job") -> list[dict]:
    return [{"name": f"{prefix}-{i}", "model": "happyhorse-1.0-t2v", "prompt": f"scene {i}", "duration": 3,
             "resolution": "720P"} for i in range(n)]


def write_manifest(folder: Path, base_url: str, jobs: list[dict], **limits) -> Path:
    doc = {
        "campaign": "test",
        "base_url": base_url,
        "output_dir": str(folder / "out"),
        "limits": {"submit_rps": 50, "query_rps": 100, "max_in_flight": 20, "poll_interval": 1,
                   "max_attempts": 3, **limits},
        "jobs": jobs,
    }
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


async def run(manifest: Path, out: Path, *extra: str, key: str = KEY) -> int:
    args = build_parser().parse_args(
        ["run", str(manifest), "--output", str(out), "--progress", "off", "--reconcile-grace", "0.5",
         "--poll-interval", "0.05", *extra]
    )
    return await _run(args, load_manifest(manifest), key)


def sim_config(**kw) -> SimConfig:
    return SimConfig(api_key=KEY, time_scale=kw.pop("time_scale", 2000), concurrency=kw.pop("concurrency", 10),
                     submit_rps=0, query_rps=0, **kw)


def journal_rows(out: Path) -> dict:
    with Journal.open(out, readonly=True) as j:
        return {r.name: r for r in j.rows()}


def created_task_ids(sim: Simulator) -> list[str]:
    return [r.task_id for r in sim.requests if r.kind == "create" and r.task_id]


def assert_no_orphan_tasks(sim: Simulator, out: Path) -> None:
    """Every task the server created belongs to exactly one job: nothing billed twice unseen."""
    created = created_task_ids(sim)
    assert len(created) == len(set(created))
    con = sqlite3.connect(out / "journal.sqlite")
    owners = dict(con.execute("SELECT task_id, job FROM tasks"))
    con.close()
    assert set(created) <= set(owners), f"tasks created but never recorded: {set(created) - set(owners)}"


def assert_videos_intact(out: Path, rows: dict) -> None:
    for row in rows.values():
        data = Path(row.video_path).read_bytes()
        assert hashlib.sha256(data).hexdigest() == row.sha256
    assert not list((out / "videos").glob(".*.part"))


async def test_every_model_end_to_end(tmp_path):
    """One job per model runs to a verified video, a report per job, a run summary and CSV."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, ALL_MODELS)
        out = tmp_path / "out"
        assert await run(manifest, out) == 0
        rows = journal_rows(out)
        assert {r.state for r in rows.values()} == {"done"}
        assert_videos_intact(out, rows)
        jobs = {j.name: j for j in load_manifest(manifest).jobs}
        for name, row in rows.items():
            assert verify_video(Path(row.video_path), jobs[name], None) is None
            report = json.loads((out / "videos" / f"{name}.json").read_text())
            assert report["task_id"] == row.task_id and report["video"]["sha256"] == row.sha256
            assert [h["state"] for h in report["history"]][-1] == "done"
            assert (out / "logs" / f"{name}.jsonl").exists()
        assert sim.count("create") == 5
        summary = json.loads(next((out / "runs").glob("*.json")).read_text())
        assert summary["counts"] == {"done": 5} and summary["exit_code"] == 0
        csv_lines = next((out / "runs").glob("*.csv")).read_text().splitlines()
        assert len(csv_lines) == 6


async def test_api_key_never_written(tmp_path):
    """The API key appears in no output file: logs, reports, journal."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(2))
        out = tmp_path / "out"
        assert await run(manifest, out) == 0
    for path in out.rglob("*"):
        if path.is_file():
            assert KEY.encode() not in path.read_bytes(), path


async def test_rerun_sends_nothing_for_saved_videos(tmp_path):
    """A second run of a finished campaign creates no task and downloads nothing."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(3))
        out = tmp_path / "out"
        assert await run(manifest, out) == 0
        before = len(sim.requests)
        assert await run(manifest, out) == 0
        assert len(sim.requests) == before


async def test_damaged_video_is_fetched_again_not_recreated(tmp_path):
    """A saved video whose sha256 no longer matches is downloaded again from the same task."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(2))
        out = tmp_path / "out"
        assert await run(manifest, out) == 0
        victim = journal_rows(out)["job-0"]
        Path(victim.video_path).write_bytes(b"garbage")
        assert await run(manifest, out) == 0
        assert sim.count("create") == 2
        rows = journal_rows(out)
        assert rows["job-0"].task_id == victim.task_id
        assert_videos_intact(out, rows)


async def test_faults_every_job_ends_correct(tmp_path):
    """5xx, dropped connections, 429 bursts, truncated downloads and retryable FAILED tasks:
    every job still ends done, no file is corrupt, no task is orphaned."""
    faults = Faults(error_rate=0.15, drop_rate=0.1, throttle_rate=0.05, throttle_burst=3, truncate_rate=0.3,
                    fail_rate=0.2, fail_codes=("InternalError.Algo",))
    async with Simulator(sim_config(faults=faults, seed=1)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(20), max_attempts=6)
        out = tmp_path / "out"
        code = await run(manifest, out)
        rows = journal_rows(out)
        assert code == 0, {n: (r.state, r.error_message) for n, r in rows.items() if r.state != "done"}
        assert_videos_intact(out, rows)
        assert_no_orphan_tasks(sim, out)
        assert any(r.kind == "create" and r.status is None for r in sim.requests), "no create was dropped"
        assert any(r.kind == "download" and r.status == 200 for r in sim.requests)


async def test_dropped_create_is_adopted_not_recreated(tmp_path):
    """A create whose answer was lost is found through the task list and adopted: one task per job."""
    faults = Faults(drop_rate=1.0, drop_on=("create",))
    async with Simulator(sim_config(faults=faults)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(3))
        out = tmp_path / "out"
        assert await run(manifest, out) == 0
        assert sim.count("create") == 3
        assert sim.count("list") >= 1
        assert_no_orphan_tasks(sim, out)
        rows = journal_rows(out)
        assert len({r.task_id for r in rows.values()}) == 3


async def test_non_retryable_failure_exits_1_with_reason(tmp_path):
    """A task refused for its content fails once, is not re-created, and the run exits 1."""
    faults = Faults(fail_rate=1.0, fail_codes=("DataInspectionFailed",))
    async with Simulator(sim_config(faults=faults)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(2))
        out = tmp_path / "out"
        assert await run(manifest, out) == 1
        assert sim.count("create") == 2
        rows = journal_rows(out)
        assert {r.error_code for r in rows.values()} == {"DataInspectionFailed"}
        summary = json.loads(next((out / "runs").glob("*.json")).read_text())
        assert summary["exit_code"] == 1 and len(summary["not_done"]) == 2


async def test_retryable_failure_stops_at_max_attempts(tmp_path):
    """An always-failing InternalError task is created max_attempts times, then the job fails."""
    faults = Faults(fail_rate=1.0, fail_codes=("InternalError.Algo",))
    async with Simulator(sim_config(faults=faults)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(1), max_attempts=2)
        out = tmp_path / "out"
        assert await run(manifest, out) == 1
        assert sim.count("create") == 2
        assert journal_rows(out)["job-0"].attempts == 2


async def test_account_error_stops_submissions_and_exits_5(tmp_path):
    """After an account refusal nothing more is submitted, in-flight tasks finish, exit 5."""
    faults = Faults(account_error="Arrearage", account_error_after=2)
    async with Simulator(sim_config(faults=faults)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(6), submit_rps=5)
        out = tmp_path / "out"
        assert await run(manifest, out) == 5
        assert sim.count("create") == 3
        states = sorted(str(r.state) for r in journal_rows(out).values())
        assert states.count("done") == 2 and states.count("new") == 4


async def test_invalid_key_exits_5(tmp_path):
    """A key the service refuses stops the run with exit 5 and creates nothing."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(2))
        assert await run(manifest, tmp_path / "out", key="sk-wrong") == 5
        assert sim.count("create", 200) == 0


async def test_lock_held_exits_4(tmp_path):
    """A second run of a campaign that is running exits 4 and sends nothing."""
    from runner._errors import LockHeld

    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(1))
        out = tmp_path / "out"
        with CampaignLock(out):
            with pytest.raises(LockHeld) as info:
                await run(manifest, out)
        assert info.value.exit_code == 4
        assert sim.requests == []


async def test_expired_task_fails_unless_recreate_expired(tmp_path):
    """A task id that expired before the video was saved fails; --recreate-expired creates it again."""
    async with Simulator(sim_config(task_ttl=1.0, time_scale=1000)) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(1))
        out = tmp_path / "out"
        assert await run(manifest, out, "--poll-interval", "0.5") == 1
        assert journal_rows(out)["job-0"].state == "expired"
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(1))
        assert await run(manifest, out, "--recreate-expired") == 0
        assert sim.count("create") == 1


async def test_video_failing_verification_is_kept_aside_and_counts_as_an_attempt(tmp_path):
    """A wrong-length video never lands under its final name; each one costs an attempt, up to max_attempts."""
    async with Simulator(sim_config(faults=Faults(wrong_duration_rate=1.0))) as sim:
        path = write_manifest(tmp_path, sim.base_url, t2v_jobs(1), max_attempts=2)
        code = await run(path, tmp_path / "out")
        assert sim.count("create") == 2
    assert code == 1
    row = journal_rows(tmp_path / "out")["job-0"]
    assert (row.state, row.error_code, row.attempts) == ("failed", "VerificationFailed", 2)
    assert "too long" in row.error_message
    videos = tmp_path / "out" / "videos"
    assert not (videos / "job-0.mp4").exists()
    assert sorted(p.name for p in (videos / "rejected").iterdir()) == ["job-0.attempt-1.mp4", "job-0.attempt-2.mp4"]


async def test_a_refused_key_is_tried_once_not_once_per_slot(tmp_path):
    """The first create goes out alone: with a wrong key the service sees one create, not a volley."""
    async with Simulator(sim_config()) as sim:
        manifest = write_manifest(tmp_path, sim.base_url, t2v_jobs(20), submit_rps=1000, max_in_flight=20)
        assert await run(manifest, tmp_path / "out", key="sk-wrong") == 5
        assert sim.count("create") == 1
