"""What every benchmark shares: a simulator in this process, the runner in a child process.

The runner is started as ``python -m runner MANIFEST --base-url URL`` with
``DASHSCOPE_API_KEY`` set, exactly as a user would run it, and reaped with
`os.wait4` so its own CPU time and peak RSS are measured (not this process's,
which is busy being the simulator). Waiting happens in a thread so the
simulator keeps serving on the event loop meanwhile.
"""

from __future__ import annotations

import asyncio
import json
import os
import resource
import secrets
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
MODEL = "happyhorse-1.0-t2v"
#: job `clip-{seed}`'s prompt; `bench._peer_clients` gives its clients the same ones
PROMPT = "shot {seed}: a lighthouse in a storm at dusk, waves crashing on the rocks"


def new_key() -> str:
    """A throwaway API key for one benchmark (the simulator accepts only it)."""
    return "sk-bench-" + secrets.token_hex(12)


def write_manifest(
    folder: Path,
    base_url: str,
    n: int,
    *,
    limits: Mapping[str, Any],
    duration: int = 5,
    campaign: str = "bench",
) -> Path:
    """A campaign of `n` t2v jobs (720P, `duration` s), one matrix entry; each job has its own prompt.

    Job `clip-{seed}` has the prompt "shot {seed}: ..." so a simulator task can be
    traced back to its job by prompt.
    """
    doc = {
        "campaign": campaign,
        "base_url": base_url,
        "output_dir": str(folder / "out"),
        "limits": dict(limits),
        "defaults": {"resolution": "720P", "duration": duration, "watermark": False},
        "jobs": [{
            "name": "clip-{seed}",
            "model": MODEL,
            "prompt": PROMPT,
            "matrix": {"seed": list(range(n))},
        }],
    }
    path = folder / "bench.yaml"
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1_000_000), encoding="utf-8")
    return path


def job_of_prompt(prompt: str | None) -> str | None:
    """The job name a benchmark prompt belongs to ("shot 12: ..." -> "clip-12")."""
    if not prompt or not prompt.startswith("shot "):
        return None
    return "clip-" + prompt[5:].split(":", 1)[0]


@dataclass(frozen=True, slots=True)
class ChildRun:
    """How one runner child process went."""

    exit_code: int
    wall_seconds: float
    cpu_seconds: float
    peak_rss_mb: float
    #: everything it printed (stdout and stderr together)
    output: str

    def figures(self) -> dict[str, float | int]:
        return {"exit_code": self.exit_code, "wall_s": round(self.wall_seconds, 3),
                "cpu_s": round(self.cpu_seconds, 3), "peak_rss_mb": round(self.peak_rss_mb, 1)}


def _rss_mb(usage: resource.struct_rusage) -> float:
    # ru_maxrss is KiB on Linux, bytes on macOS
    return usage.ru_maxrss / (2**20 if sys.platform == "darwin" else 1024)


def start_child(argv: Sequence[str], key: str | None, log: Path) -> tuple[subprocess.Popen[bytes], float]:
    """Start `python ARGV...` in the repository with the key in its environment; output goes to `log`."""
    env = {k: v for k, v in os.environ.items() if k != "DASHSCOPE_API_KEY"}
    if key is not None:
        env["DASHSCOPE_API_KEY"] = key
    env["PYTHONUNBUFFERED"] = "1"
    with open(log, "ab") as out:
        proc = subprocess.Popen([sys.executable, *argv], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)
    return proc, time.perf_counter()


async def reap(proc: subprocess.Popen[bytes], started: float, log: Path, timeout: float | None = None) -> ChildRun:
    """Wait for `proc` (killing it after `timeout` s) and measure it with wait4."""
    waiter = asyncio.ensure_future(asyncio.to_thread(os.wait4, proc.pid, 0))
    try:
        _, status, usage = await asyncio.wait_for(asyncio.shield(waiter), timeout)
    except TimeoutError:
        proc.kill()
        _, status, usage = await waiter
    wall = time.perf_counter() - started
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code  # reaped here, not by Popen
    return ChildRun(code, wall, usage.ru_utime + usage.ru_stime, _rss_mb(usage),
                    log.read_text(encoding="utf-8", errors="replace"))


async def run_runner(
    manifest: Path,
    base_url: str,
    key: str,
    *,
    extra: Sequence[str] = (),
    timeout: float | None = None,
) -> ChildRun:
    """``python -m runner MANIFEST --base-url URL --progress off EXTRA...``, measured."""
    log = manifest.parent / f"runner-{time.monotonic_ns()}.log"
    argv = ["-m", "runner", str(manifest), "--base-url", base_url, "--progress", "off", *extra]
    proc, started = start_child(argv, key, log)
    return await reap(proc, started, log, timeout)


async def run_python(code: str, *args: str, folder: Path, timeout: float | None = None) -> tuple[ChildRun, Any]:
    """Run `code` in a fresh interpreter (the runner importable); its last stdout line is parsed as JSON."""
    log = folder / f"child-{time.monotonic_ns()}.log"
    proc, started = start_child(["-c", code, *args], None, log)
    run = await reap(proc, started, log, timeout)
    lines = [line for line in run.output.splitlines() if line.startswith("{")]
    return run, json.loads(lines[-1]) if lines else None


def print_result(name: str, figures: Mapping[str, Any], rows: Sequence[tuple[str, Any]]) -> None:
    """The benchmark's one JSON line, then a short human table."""
    print(json.dumps({"bench": name, **figures}, default=str), flush=True)
    width = max((len(label) for label, _ in rows), default=0)
    for label, value in rows:
        print(f"  {label:<{width}}  {value}")
    sys.stdout.flush()
