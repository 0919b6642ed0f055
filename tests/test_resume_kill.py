"""Resume after the process is killed (SIGKILL) or interrupted (SIGINT): nothing created twice, nothing lost."""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import signal
import sqlite3
import sys
from pathlib import Path

import yaml

from runner._journal import Journal
from runner._sim import SimConfig, Simulator

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test-resume-42"


def manifest(folder: Path, base_url: str, n: int) -> Path:
    doc = {
        "campaign": "resume",
        "base_url": base_url,
        "output_dir": str(folder / "out"),
        "limits": {"submit_rps": 8, "query_rps": 50, "max_in_flight": 5, "poll_interval": 1, "max_attempts": 3},
        "jobs": [{"name": f"clip-{i}", "model": "happyhorse-1.0-t2v", "prompt": f"shot {i}", "duration": 3,
                  "resolution": "720P"} for i in range(n)],
    }
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump(doc))
    return path


async def start(path: Path) -> asyncio.subprocess.Process:
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY}
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", str(path), "--progress", "plain", "--poll-interval", "0.05",
        "--reconcile-grace", "0.5", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )


def check_campaign(sim: Simulator, out: Path, n: int) -> None:
    """Every job done with an intact video; the server created exactly one task per job."""
    with Journal.open(out, readonly=True) as j:
        rows = list(j.rows())
    assert len(rows) == n
    for row in rows:
        assert row.state == "done", (row.name, row.state, row.error_message)
        assert hashlib.sha256(Path(row.video_path).read_bytes()).hexdigest() == row.sha256
    created = [r.task_id for r in sim.requests if r.kind == "create" and r.task_id]
    assert len(created) == n, f"{len(created)} tasks created for {n} jobs"
    con = sqlite3.connect(out / "journal.sqlite")
    owners = dict(con.execute("SELECT task_id, job FROM tasks"))
    con.close()
    assert set(created) == set(owners) and len(set(owners.values())) == n
    assert sorted(row.task_id for row in rows) == sorted(created)
    assert not list((out / "videos").glob(".*.part"))


async def test_sigkill_at_random_points_then_resume(tmp_path):
    """Killed with SIGKILL three times at random moments, the run still ends with one task and one intact video per job."""
    rng = random.Random(20260101)
    n = 10
    async with Simulator(SimConfig(api_key=KEY, time_scale=150, concurrency=4, submit_rps=0, query_rps=0)) as sim:
        path = manifest(tmp_path, sim.base_url, n)
        for _ in range(3):
            proc = await start(path)
            assert proc.stdout is not None
            await asyncio.wait_for(proc.stdout.readline(), 60)  # the first progress line: the run has begun
            await asyncio.sleep(rng.uniform(0.05, 1.0))
            if proc.returncode is None:
                proc.kill()
            await proc.communicate()
        with Journal.open(tmp_path / "out", readonly=True) as j:
            left = n - j.counts().get("done", 0)
        created_before = sim.count("create")
        proc = await start(path)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()
        check_campaign(sim, tmp_path / "out", n)
        # the kills left work behind for the last run: it was a real resume
        assert left > 0 and 0 < created_before


async def test_sigint_exits_3_and_rerun_completes(tmp_path):
    """SIGINT stops the run with exit 3 after journal writes; re-running finishes it without duplicates."""
    n = 8
    async with Simulator(SimConfig(api_key=KEY, time_scale=40, concurrency=2, submit_rps=0, query_rps=0)) as sim:
        path = manifest(tmp_path, sim.base_url, n)
        proc = await start(path)
        assert proc.stdout is not None
        while True:  # wait until something is in flight
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
            assert line, "the run ended before it could be interrupted"
            if b"pending" in line or b"running" in line:
                break
        proc.send_signal(signal.SIGINT)
        rest, _ = await asyncio.wait_for(proc.communicate(), 30)
        assert proc.returncode == 3, rest.decode()
        assert b"interrupted" in rest
        with Journal.open(tmp_path / "out", readonly=True) as j:
            assert j.counts().get("done", 0) < n
        proc = await start(path)
        output, _ = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, output.decode()
        check_campaign(sim, tmp_path / "out", n)
