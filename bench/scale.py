"""Benchmark: peak RSS and wall time at 10,000 and 100,000 jobs (validation, planning, a full run).

    .venv/bin/python -m bench.scale [--n 10000 --n 100000] [--run-up-to 10000] [--time-scale 80]

For each N, in fresh child processes (so each peak RSS is its own):
* validate - `load_manifest` of an N-job matrix manifest, media checks on;
* plan     - the same, then `Journal.plan` into a new journal (what a run does
             before sending anything), timed on its own;
* run      - `python -m runner MANIFEST` end to end against the simulator with
             no quota (runner limits 1000/s, 1000 in flight), for N up to
             `--run-up-to` (a full 100,000-job run takes about ten CPU minutes;
             ask for it with `--run-up-to 100000`).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._harness import new_key, print_result, run_python, run_runner, write_manifest

DURATION = 5
LIMITS = {"submit_rps": 1000, "query_rps": 1000, "max_in_flight": 1000, "max_attempts": 3}

#: run in a child: load (and plan) the manifest in argv[1]; print one JSON line of figures
_CHILD = r"""
import json, resource, sys, time
from pathlib import Path
start = time.perf_counter()
from runner._manifest import load_manifest
manifest = load_manifest(sys.argv[1])
loaded = time.perf_counter()
out = {"jobs": len(manifest.jobs), "validate_s": loaded - start}
if sys.argv[2] == "plan":
    from runner._journal import Journal, PlannedJob
    with Journal.open(Path(sys.argv[3])) as journal:
        journal.start_run("bench")
        journal.plan((PlannedJob(j.name, j.key, j.model, j.body) for j in manifest.jobs), "bench",
                     max_attempts=3, file_intact=lambda row: False)
        out["plan_s"] = time.perf_counter() - loaded
        files = [Path(journal.path), Path(str(journal.path) + "-wal")]
        out["journal_mb"] = sum(f.stat().st_size for f in files if f.exists()) / 2**20
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


async def measure_size(n: int, full_run: bool, time_scale: float, timeout: float | None = None) -> dict[str, Any]:
    """Validate, plan and (when `full_run`) run an `n`-job campaign; the figures for that size."""
    from runner._sim import SimConfig, Simulator
    from runner._sim import _mp4

    key = new_key()
    figures: dict[str, Any] = {"n": n}
    await asyncio.to_thread(_mp4.mp4, DURATION, "16:9", 720)
    config = SimConfig(api_key=key, time_scale=time_scale, submit_rps=0, query_rps=0, concurrency=None)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        folder = Path(tmp)
        async with Simulator(config) as sim:
            manifest = write_manifest(folder, sim.base_url, n, limits=LIMITS, duration=DURATION)
            run, out = await run_python(_CHILD, str(manifest), "validate", folder=folder, timeout=timeout)
            figures["validate"] = {"wall_s": round(out["validate_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1),
                                   "jobs": out["jobs"]}
            run, out = await run_python(_CHILD, str(manifest), "plan", str(folder / "plan"), folder=folder,
                                        timeout=timeout)
            figures["plan"] = {"wall_s": round(out["plan_s"], 3), "peak_rss_mb": round(out["peak_rss_mb"], 1),
                               "journal_mb": round(out["journal_mb"], 1)}
            if full_run:
                run = await run_runner(manifest, sim.base_url, key, timeout=timeout,
                                       extra=["--poll-interval", f"{15.0 / time_scale:.4f}"])
                videos = len(list((folder / "out" / "videos").glob("*.mp4")))
                figures["run"] = {**run.figures(), "videos": videos, "creates": sim.count("create"),
                                  "jobs_per_s": round(n / run.wall_seconds, 1)}
    return figures


async def measure(sizes: list[int], run_up_to: int, time_scale: float) -> dict[str, Any]:
    results = [await measure_size(n, n <= run_up_to, time_scale) for n in sizes]
    return {"time_scale": time_scale, "results": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, action="append", help="jobs; repeat for several sizes (default 10000, 100000)")
    parser.add_argument("--run-up-to", type=int, default=10_000,
                        help="do the full run only for sizes up to this (default 10000)")
    parser.add_argument("--time-scale", type=float, default=80.0, help="simulator time scale (default 80)")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.n or [10_000, 100_000], args.run_up_to, args.time_scale))
    rows = []
    ok = True
    for r in figures["results"]:
        rows.append((f"{r['n']:>7} validate", f"{r['validate']['wall_s']} s, {r['validate']['peak_rss_mb']} MB"))
        rows.append((f"{r['n']:>7} plan", f"{r['plan']['wall_s']} s (after validation), {r['plan']['peak_rss_mb']} MB, "
                                          f"journal {r['plan']['journal_mb']} MB"))
        if "run" in r:
            run = r["run"]
            ok = ok and run["exit_code"] == 0 and run["videos"] == r["n"]
            rows.append((f"{r['n']:>7} full run", f"{run['wall_s']} s, {run['peak_rss_mb']} MB, CPU {run['cpu_s']} s, "
                                                  f"exit {run['exit_code']}, {run['videos']} videos"))
    print_result("scale", figures, rows)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
