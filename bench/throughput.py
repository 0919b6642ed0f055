"""Benchmark: does the runner use the whole submit quota, without a 429, and finish near the lower bound?

    .venv/bin/python -m bench.throughput [--n 2000] [--rps 20] [--time-scale 8]

N happyhorse-1.0-t2v jobs (5 s, 720P: ~80 simulated seconds of generation,
+-10 %) against a simulator whose submit and query quotas are R requests a
second (real seconds), with the runner's limits set to the same R. The
simulator runs `--time-scale` times faster than real time, so generation takes
T = 80 / time-scale real seconds while the quota stays R per real second: that
keeps R*T tasks in flight, as the real service would with T scaled down.

Figures:
* submit_rate_ratio - (creates - 1) / (last create - first create) / R; goal >= 0.97
* throttled_429 - 429 answers the simulator sent (creates, queries, lists); goal 0
* wall_over_lower_bound - runner wall time / (N/R + T + one download)
* queries_per_task - task queries sent / N
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from ._harness import new_key, print_result, run_runner, write_manifest

DURATION = 5


async def _download_seconds(sim: Any, samples: int = 5) -> float:
    """Median time to fetch one finished video over loopback (the MP4 already encoded)."""
    task = next(t for t in sim.tasks.values() if t.end_at is not None)
    url = sim._sign(task, sim.clock.now())  # noqa: SLF001 - the URL a query would hand out
    times = []
    async with aiohttp.ClientSession() as session:
        for _ in range(samples):
            start = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
            times.append(time.perf_counter() - start)
    return statistics.median(times)


async def measure(n: int, rps: float, time_scale: float, *, timeout: float | None = None) -> dict[str, Any]:
    """Run the campaign once and return the figures."""
    from runner._sim import SimConfig, Simulator
    from runner._sim import _mp4
    from runner._sim._tasks import generation_seconds

    key = new_key()
    config = SimConfig(api_key=key, time_scale=time_scale, submit_rps=rps, query_rps=rps, concurrency=None)
    await asyncio.to_thread(_mp4.mp4, DURATION, "16:9", 720)  # encode the result video before the clock starts
    poll_interval = 15.0 / time_scale
    with tempfile.TemporaryDirectory(prefix="bench-throughput-") as tmp:
        async with Simulator(config) as sim:
            limits = {"submit_rps": rps, "query_rps": rps, "max_in_flight": 100_000, "max_attempts": 3}
            manifest = write_manifest(Path(tmp), sim.base_url, n, limits=limits, duration=DURATION)
            run = await run_runner(manifest, sim.base_url, key,
                                   extra=["--poll-interval", f"{poll_interval:.4f}"], timeout=timeout)
            creates = sorted(r.at for r in sim.requests if r.kind == "create" and r.status == 200)
            span = (creates[-1] - creates[0]) / time_scale if len(creates) > 1 else 0.0
            achieved = (len(creates) - 1) / span if span > 0 else 0.0
            generation = [t.generation_seconds / time_scale for t in sim.tasks.values()]
            throttled = sum(1 for r in sim.requests if r.status == 429)
            throttled_by_kind = {kind: sim.count(kind, 429) for kind in ("create", "query", "list")}
            queries = sim.count("query")
            requests = len(sim.requests)  # counted before the timing downloads below add theirs
            download = await _download_seconds(sim)
    t_mean = statistics.fmean(generation) if generation else generation_seconds(DURATION, 720) / time_scale
    lower = n / rps + t_mean + download
    return {
        "n": n, "rps": rps, "time_scale": time_scale, "poll_interval_s": round(poll_interval, 3),
        "generation_s": round(t_mean, 3), "download_s": round(download, 4),
        "runner": run.figures(),
        "creates": len(creates), "achieved_submit_rps": round(achieved, 3),
        "submit_rate_ratio": round(achieved / rps, 4),
        "throttled_429": throttled, "throttled_by_kind": throttled_by_kind,
        "lower_bound_s": round(lower, 3), "wall_over_lower_bound": round(run.wall_seconds / lower, 4),
        "queries_per_task": round(queries / n, 3), "requests_per_task": round(requests / n, 3),
        "goals": {"submit_rate_ratio": ">= 0.97", "throttled_429": 0},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000, help="jobs (default 2000)")
    parser.add_argument("--rps", type=float, default=20.0, help="submit and query quota R, requests/s (default 20)")
    parser.add_argument("--time-scale", type=float, default=8.0,
                        help="simulated seconds per real second (default 8: T = 10 s for an 80 s job)")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.n, args.rps, args.time_scale))
    run = figures["runner"]
    print_result("throughput", figures, [
        ("jobs / exit code", f"{figures['n']} / {run['exit_code']}"),
        ("submit rate", f"{figures['achieved_submit_rps']} of {figures['rps']}/s = {figures['submit_rate_ratio']:.3f} "
                        "(goal >= 0.97)"),
        ("429s from the simulator", f"{figures['throttled_429']} (goal 0): {figures['throttled_by_kind']}"),
        ("wall / lower bound", f"{run['wall_s']} s / {figures['lower_bound_s']} s = {figures['wall_over_lower_bound']:.3f}"),
        ("queries per task", figures["queries_per_task"]),
        ("requests per task", figures["requests_per_task"]),
        ("runner CPU, peak RSS", f"{run['cpu_s']} s, {run['peak_rss_mb']} MB"),
    ])
    return 0 if run["exit_code"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
