"""Benchmark: the runner's own CPU per 1,000 task life cycles (submit, polls, download, journal).

    .venv/bin/python -m bench.overhead [--n 1000] [--time-scale 80]

The simulator has no rate quota and no concurrency quota and the runner's
limits are 1000/s with up to 1000 tasks in flight, so the runner, not the
quota, is the limit. Generation is 80 simulated seconds (+-10 %) and the poll
interval 15 simulated seconds, both divided by `--time-scale`, so each task is
polled about as many times as it would be for real. Every life cycle writes
the journal, the run log, the job report and a verified, checksummed video.

The runner's CPU (user + system, from wait4) includes interpreter start-up and
imports; a one-job run measures that fixed part, and
`net_cpu_s_per_1000` = (CPU(N) - CPU(1)) / (N - 1) * 1000.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._harness import new_key, print_result, run_runner, write_manifest

DURATION = 5


async def _one(n: int, time_scale: float, timeout: float | None) -> tuple[Any, dict[str, int]]:
    from runner._sim import SimConfig, Simulator
    from runner._sim import _mp4

    key = new_key()
    await asyncio.to_thread(_mp4.mp4, DURATION, "16:9", 720)
    config = SimConfig(api_key=key, time_scale=time_scale, submit_rps=0, query_rps=0, concurrency=None)
    with tempfile.TemporaryDirectory(prefix="bench-overhead-") as tmp:
        async with Simulator(config) as sim:
            limits = {"submit_rps": 1000, "query_rps": 1000, "max_in_flight": 1000, "max_attempts": 3}
            manifest = write_manifest(Path(tmp), sim.base_url, n, limits=limits, duration=DURATION)
            run = await run_runner(manifest, sim.base_url, key,
                                   extra=["--poll-interval", f"{15.0 / time_scale:.4f}"], timeout=timeout)
            counts = {kind: sim.count(kind) for kind in ("create", "query", "download", "list")}
    return run, counts


async def measure(n: int, time_scale: float, *, timeout: float | None = None) -> dict[str, Any]:
    """One run of `n` jobs and one of a single job; the figures."""
    base, _ = await _one(1, time_scale, timeout)
    run, counts = await _one(n, time_scale, timeout)
    net = (run.cpu_seconds - base.cpu_seconds) / max(1, n - 1) * 1000
    return {
        "n": n, "time_scale": time_scale,
        "runner": run.figures(), "one_job_run": base.figures(),
        "cpu_s_per_1000": round(run.cpu_seconds / n * 1000, 3),
        "net_cpu_s_per_1000": round(net, 3),
        "tasks_per_cpu_s": round(n / max(1e-9, run.cpu_seconds - base.cpu_seconds), 1),
        "queries_per_task": round(counts["query"] / n, 3),
        "requests": counts,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=1000, help="jobs (default 1000)")
    parser.add_argument("--time-scale", type=float, default=80.0,
                        help="simulated seconds per real second (default 80: T = 1 s, poll every 0.19 s)")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.n, args.time_scale))
    run = figures["runner"]
    print_result("overhead", figures, [
        ("jobs / exit code", f"{figures['n']} / {run['exit_code']}"),
        ("runner CPU", f"{run['cpu_s']} s ({figures['one_job_run']['cpu_s']} s of it start-up, one-job run)"),
        ("CPU per 1000 life cycles", f"{figures['cpu_s_per_1000']} s gross, {figures['net_cpu_s_per_1000']} s net"),
        ("queries per task", figures["queries_per_task"]),
        ("wall, peak RSS", f"{run['wall_s']} s, {run['peak_rss_mb']} MB"),
    ])
    return 0 if run["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
