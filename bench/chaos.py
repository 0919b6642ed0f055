"""Chaos harness: kill -9 the runner at random moments, many times over one campaign, and check it every time.

    .venv/bin/python -m bench.chaos [--n 100] [--trials 25] [--seed 1] [--fault-rate 0.03]

One campaign of N jobs against one simulator that also misbehaves (5xx,
dropped connections, including creates whose task exists but whose answer
never arrives, and truncated downloads, each at `--fault-rate`). Each trial
starts `python -m runner`, sends it SIGKILL after a random delay (0.1 to 3 s,
so some kills land during start-up, planning, submitting, polling or
downloading), then checks what it left:

* no job created twice - the simulator's tasks, traced to jobs by prompt;
* no partial file under a final name - every ``videos/*.mp4`` is byte for byte
  the video the simulator serves;
* no video lost - every job the journal calls done has its file, with the
  sha256 it recorded;
* journal consistent - SQLite integrity check, known states only, task ids
  owned by their job in the ``tasks`` table, done rows with path and sha256.

Then runs without a kill until the campaign ends, and checks that every job
is done with exactly one task, every task adopted by the journal. Prints a
summary; exit 1 when any check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import signal
import sqlite3
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

from ._harness import job_of_prompt, new_key, print_result, reap, start_child, write_manifest

DURATION = 3


def _journal_rows(out: Path) -> tuple[list[sqlite3.Row], dict[str, str], list[str]]:
    """(job rows, task id -> owning job, problems) read straight from the SQLite file."""
    path = out / "journal.sqlite"
    if not path.exists():
        return [], {}, []
    con = sqlite3.connect(path, isolation_level=None)  # read-write: the runner is dead, WAL may need recovery
    con.row_factory = sqlite3.Row
    try:
        problems = [] if con.execute("PRAGMA integrity_check").fetchone()[0] == "ok" else ["integrity_check failed"]
        rows = list(con.execute("SELECT * FROM jobs"))
        owners = {r["task_id"]: r["job"] for r in con.execute("SELECT task_id, job FROM tasks")}
    finally:
        con.close()
    return rows, owners, problems


def check(sim: Any, out: Path, video: bytes, *, final: bool, n: int) -> list[str]:
    """Every invariant the campaign must hold after a kill (and, with `final`, at the end)."""
    from runner._schedule import State

    problems: list[str] = []
    per_job = Counter(job_of_prompt(t.prompt) for t in sim.tasks.values())
    problems += [f"{job}: {count} tasks created" for job, count in sorted(per_job.items()) if count > 1]
    videos = out / "videos"
    digest = hashlib.sha256(video).hexdigest()
    for path in sorted(videos.glob("*.mp4")) if videos.exists() else []:
        if path.read_bytes() != video:
            problems.append(f"{path.name}: not the complete video under its final name ({path.stat().st_size} bytes)")
    rows, owners, journal_problems = _journal_rows(out)
    problems += journal_problems
    known = {str(s) for s in State}
    for row in rows:
        if row["state"] not in known:
            problems.append(f"{row['name']}: unknown state {row['state']!r}")
        if row["task_id"] and owners.get(row["task_id"]) != row["name"]:
            problems.append(f"{row['name']}: task {row['task_id']} not recorded as its own")
        if row["state"] == State.DONE:
            if not row["video_path"] or not row["sha256"]:
                problems.append(f"{row['name']}: done without a video path and sha256")
            elif not Path(row["video_path"]).exists():
                problems.append(f"{row['name']}: done but {row['video_path']} is missing (video lost)")
            elif row["sha256"] != digest:
                problems.append(f"{row['name']}: recorded sha256 is not the video's")
    if final:
        done = sum(1 for row in rows if row["state"] == State.DONE)
        if done != n:
            problems.append(f"{done} of {n} jobs done at the end")
        if len(sim.tasks) != n:
            problems.append(f"{len(sim.tasks)} tasks created for {n} jobs")
        unowned = set(sim.tasks) - set(owners)
        if unowned:
            problems.append(f"{len(unowned)} created tasks the journal never adopted")
    return problems


async def campaign(n: int, trials: int, seed: int, fault_rate: float, time_scale: float) -> dict[str, Any]:
    from runner._sim import Faults, SimConfig, Simulator
    from runner._sim import _mp4

    rng = random.Random(seed)
    key = new_key()
    video = await asyncio.to_thread(_mp4.mp4, DURATION, "16:9", 720)
    faults = Faults(error_rate=fault_rate, drop_rate=fault_rate, truncate_rate=fault_rate)
    config = SimConfig(api_key=key, time_scale=time_scale, submit_rps=50, query_rps=100, concurrency=8,
                       seed=seed, faults=faults)
    # slow enough submitting that the campaign outlasts most of the trials (each gets ~1-2 s of work done)
    limits = {"submit_rps": 4, "query_rps": 50, "max_in_flight": 12, "poll_interval": 1, "max_attempts": 5}
    extra = ["--progress", "plain", "--poll-interval", "0.05", "--reconcile-grace", "0.5"]
    log: list[dict[str, Any]] = []
    violations: list[str] = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-chaos-") as tmp:
        folder = Path(tmp)
        async with Simulator(config) as sim:
            manifest = write_manifest(folder, sim.base_url, n, limits=limits, duration=DURATION, campaign="chaos")
            out = folder / "out"
            argv = ["-m", "runner", str(manifest), "--base-url", sim.base_url, *extra]
            for trial in range(trials):
                delay = rng.uniform(0.1, 3.0)
                proc, t0 = start_child(argv, key, folder / f"trial-{trial}.log")
                waiter = asyncio.ensure_future(reap(proc, t0, folder / f"trial-{trial}.log"))
                done, _ = await asyncio.wait({waiter}, timeout=delay)
                killed = not done
                if killed:
                    proc.send_signal(signal.SIGKILL)
                run = await waiter
                found = check(sim, out, video, final=False, n=n)
                violations += [f"trial {trial}: {p}" for p in found]
                log.append({"trial": trial, "delay_s": round(delay, 2), "killed": killed, "exit_code": run.exit_code,
                            "tasks": len(sim.tasks), "problems": len(found)})
            finals = []
            for _ in range(3):  # a run may end 1 when a fault used up a job's attempts; re-running retries it
                proc, t0 = start_child(argv, key, folder / "final.log")
                run = await reap(proc, t0, folder / "final.log", timeout=600)
                finals.append(run.exit_code)
                if run.exit_code == 0:
                    break
            violations += [f"final: {p}" for p in check(sim, out, video, final=True, n=n)]
            faults_seen = Counter(
                "dropped" if r.status is None else str(r.status) for r in sim.requests if r.status != 200
            )
            creates = sim.count("create")
    return {
        "n": n, "trials": trials, "seed": seed, "fault_rate": fault_rate, "time_scale": time_scale,
        "kills": sum(1 for t in log if t["killed"]), "finished_before_kill": sum(1 for t in log if not t["killed"]),
        "final_exit_codes": finals, "tasks_created": len(sim.tasks), "create_requests": creates,
        "non_200_answers": dict(faults_seen), "violations": violations, "wall_s": round(time.perf_counter() - started, 1),
        "trial_log": log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=100, help="jobs in the campaign (default 100)")
    parser.add_argument("--trials", type=int, default=25, help="kill -9 trials before the final run (default 25)")
    parser.add_argument("--seed", type=int, default=1, help="seed of the kill moments and the simulator's faults")
    parser.add_argument("--fault-rate", type=float, default=0.03, help="5xx, drop and truncation rate (default 0.03)")
    parser.add_argument("--time-scale", type=float, default=20.0,
                        help="simulator time scale (default 20: a job generates in ~2.4 s)")
    args = parser.parse_args(argv)
    figures = asyncio.run(campaign(args.n, args.trials, args.seed, args.fault_rate, args.time_scale))
    shown = {k: v for k, v in figures.items() if k != "trial_log"}
    print_result("chaos", shown, [
        ("jobs, trials", f"{figures['n']}, {figures['trials']} ({figures['kills']} killed, "
                         f"{figures['finished_before_kill']} ended first)"),
        ("tasks created", f"{figures['tasks_created']} for {figures['n']} jobs ({figures['create_requests']} create requests)"),
        ("faults answered", figures["non_200_answers"]),
        ("final run exit codes", figures["final_exit_codes"]),
        ("violations", len(figures["violations"]) or "none"),
        *[("  -", v) for v in figures["violations"][:20]],
    ])
    return 1 if figures["violations"] else 0


if __name__ == "__main__":
    sys.exit(main())
