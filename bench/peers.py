"""Benchmark: the runner against the seeds' script style and the official SDK, same simulator, same run.

    .venv/bin/python -m bench.peers [--n 16] [--concurrency 8] [--time-scale 20]

One simulator (submit and query quotas 20/s, no concurrency quota, generation
~80 simulated seconds for the 5 s 720P job, `--time-scale` times faster than
real time) serves three clients in turn, each in its own process, each making
the same N videos:

* baseline - the seeds' scripts: per job, create with `requests`, poll every
  15 simulated seconds (15 / time-scale real), download; one job at a time;
* sdk - `dashscope.VideoSynthesis.async_call` + `wait` from a thread pool of
  `--concurrency` workers. `wait` polls on its own real-second schedule
  (1 s, growing to 5 s) that cannot be scaled, so against a sped-up clock it
  polls less often, in simulated time, than it would for real;
* runner - `python -m runner`, max_in_flight = `--concurrency`, poll interval
  15 simulated seconds.

Reported: wall time, CPU, requests per task and their ratios to the runner's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

from ._harness import ChildRun, new_key, print_result, reap, run_runner, start_child, write_manifest

DURATION = 5


def _requests(sim: Any, since: int, n: int) -> dict[str, Any]:
    records = sim.requests[since:]
    kinds: dict[str, int] = {}
    for r in records:
        kinds[r.kind] = kinds.get(r.kind, 0) + 1
    return {"by_kind": kinds, "requests_per_task": round(len(records) / n, 3),
            "throttled_429": sum(1 for r in records if r.status == 429)}


async def _peer(peer: str, base_url: str, key: str, n: int, folder: Path, interval: float,
                concurrency: int, timeout: float | None) -> tuple[ChildRun, dict[str, Any]]:
    log = folder / f"{peer}.log"
    argv = ["-m", "bench._peer_clients", peer, "--base-url", base_url, "--n", str(n), "--out", str(folder / peer),
            "--interval", f"{interval:.4f}", "--concurrency", str(concurrency)]
    proc, started = start_child(argv, key, log)
    run = await reap(proc, started, log, timeout)
    lines = [line for line in run.output.splitlines() if line.startswith("{")]
    return run, json.loads(lines[-1]) if lines else {"saved": 0, "failed": n}


async def measure(n: int, concurrency: int, time_scale: float, *, timeout: float | None = None) -> dict[str, Any]:
    from runner._sim import SimConfig, Simulator
    from runner._sim import _mp4

    key = new_key()
    await asyncio.to_thread(_mp4.mp4, DURATION, "16:9", 720)
    interval = 15.0 / time_scale
    config = SimConfig(api_key=key, time_scale=time_scale, submit_rps=20, query_rps=20, concurrency=None)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-peers-") as tmp:
        folder = Path(tmp)
        async with Simulator(config) as sim:
            for peer in ("baseline", "sdk"):
                since = len(sim.requests)
                run, outcome = await _peer(peer, sim.base_url, key, n, folder, interval, concurrency, timeout)
                results[peer] = {**run.figures(), **outcome, **_requests(sim, since, n)}
            since = len(sim.requests)
            limits = {"submit_rps": 20, "query_rps": 20, "max_in_flight": concurrency, "max_attempts": 3}
            (folder / "runner").mkdir()
            manifest = write_manifest(folder / "runner", sim.base_url, n, limits=limits, duration=DURATION)
            run = await run_runner(manifest, sim.base_url, key, extra=["--poll-interval", f"{interval:.4f}"],
                                   timeout=timeout)
            saved = len(list((folder / "runner" / "out" / "videos").glob("*.mp4")))
            results["runner"] = {**run.figures(), "saved": saved, "failed": n - saved, **_requests(sim, since, n)}
    mine = results["runner"]
    ratios = {peer: {"wall": round(results[peer]["wall_s"] / mine["wall_s"], 2),
                     "requests_per_task": round(results[peer]["requests_per_task"] / mine["requests_per_task"], 2),
                     "cpu": round(results[peer]["cpu_s"] / mine["cpu_s"], 2)}
              for peer in ("baseline", "sdk")}
    return {"n": n, "concurrency": concurrency, "time_scale": time_scale, "poll_interval_s": round(interval, 3),
            "results": results, "ratio_to_runner": ratios}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=16, help="videos each client makes (default 16)")
    parser.add_argument("--concurrency", type=int, default=8, help="SDK threads and runner max_in_flight (default 8)")
    parser.add_argument("--time-scale", type=float, default=20.0,
                        help="simulated seconds per real second (default 20: T = 4 s)")
    args = parser.parse_args(argv)
    figures = asyncio.run(measure(args.n, args.concurrency, args.time_scale))
    rows = [(f"{'client':<8}", f"{'wall s':>8} {'CPU s':>7} {'req/task':>9} {'videos':>7} {'x runner wall':>14}")]
    for peer in ("baseline", "sdk", "runner"):
        r = figures["results"][peer]
        ratio = figures["ratio_to_runner"].get(peer, {}).get("wall", 1.0)
        rows.append((f"{peer:<8}", f"{r['wall_s']:>8} {r['cpu_s']:>7} {r['requests_per_task']:>9} "
                                   f"{r['saved']:>7} {ratio:>14}"))
    print_result("peers", figures, rows)
    return 0 if all(figures["results"][p]["failed"] == 0 for p in figures["results"]) else 1


if __name__ == "__main__":
    sys.exit(main())
