"""Benchmark: validating a 100,000-job manifest (target: under 10 s and 500 MB peak RSS).

    .venv/bin/python bench/bench_validate.py [--jobs 100000] [--scenario matrix|csv|jsonl|yaml]

Each scenario runs in a fresh child process so its peak RSS is its own. It
writes a manifest in a temporary folder (local media are copies of the demo
assets, shared by every job, so the pre-flight runs once per file), times
`load_manifest` with media checks on, and prints one JSON line of figures,
then a short table. Not a test: nothing here asserts.

Scenarios:
* matrix - two matrix entries (t2v seeds x looks, i2v seeds x moods with a local first frame)
* csv    - one row per job, each with its own prompt and seed, t2v and r2v (local reference image)
* jsonl  - the same rows as JSON lines
* yaml   - every job written out in the YAML jobs list (the slowest way to write a manifest)
"""

from __future__ import annotations

import argparse
import json
import math
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "jobs" / "assets"
SCENARIOS = ("matrix", "csv", "jsonl", "yaml")
TARGET_SECONDS = 10.0
TARGET_RSS_MB = 500.0


def _write_matrix(folder: Path, jobs: int) -> Path:
    half = jobs // 2
    looks = 100
    seeds_a = math.ceil(half / looks)
    seeds_b = math.ceil((jobs - half) / looks)
    text = f"""campaign: bench-matrix
defaults:
  resolution: 720P
  duration: 5
jobs:
  - name: city-{{look}}
    model: happyhorse-1.0-t2v
    prompt: A slow aerial shot over a harbour city at dusk, {{look}} colour grading
    matrix:
      look: {json.dumps([f"look{i}" for i in range(looks)])}
      seed: {json.dumps(list(range(seeds_a)))}
  - name: portrait-{{mood}}
    model: happyhorse-1.0-i2v
    first_frame: assets/portrait.png
    prompt: The person turns towards the camera, {{mood}}
    matrix:
      mood: {json.dumps([f"mood{i}" for i in range(looks)])}
      seed: {json.dumps(list(range(seeds_b)))}
"""
    path = folder / "m.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _rows(jobs: int) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for i in range(jobs):
        if i % 2:
            rows.append({"name": f"r{i}", "model": "happyhorse-1.0-r2v", "seed": i,
                         "prompt": f"character1 walks through scene {i}", "reference_images": ["assets/ref-hero.png"]})
        else:
            rows.append({"name": f"t{i}", "model": "happyhorse-1.0-t2v", "seed": i, "duration": 3 + i % 13,
                         "prompt": f"shot {i}: a lighthouse in a storm, waves crashing, take {i % 7}"})
    return rows


def _write_rows(folder: Path, jobs: int, kind: str) -> Path:
    rows = _rows(jobs)
    if kind == "csv":
        lines = ["name,model,seed,duration,prompt,reference_images"]
        for r in rows:
            refs = "|".join(r.get("reference_images", []))  # type: ignore[arg-type]
            lines.append(f"{r['name']},{r['model']},{r['seed']},{r.get('duration', '')},\"{r['prompt']}\",{refs}")
        (folder / "rows.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    else:
        (folder / "rows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    path = folder / "m.yaml"
    path.write_text(f"campaign: bench-{kind}\ndefaults:\n  resolution: 720P\njobs_from: rows.{kind}\n", encoding="utf-8")
    return path


def _write_yaml(folder: Path, jobs: int) -> Path:
    lines = ["campaign: bench-yaml", "defaults:", "  resolution: 720P", "jobs:"]
    for r in _rows(jobs):
        lines.append(f"  - name: {r['name']}")
        lines.append(f"    model: {r['model']}")
        lines.append(f"    seed: {r['seed']}")
        lines.append(f"    prompt: \"{r['prompt']}\"")
        if "duration" in r:
            lines.append(f"    duration: {r['duration']}")
        if "reference_images" in r:
            lines.append("    reference_images: [assets/ref-hero.png]")
    path = folder / "m.yaml"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def run_one(scenario: str, jobs: int) -> dict[str, object]:
    """Write and validate one scenario in this process; figures as a dict."""
    from runner._manifest import load_manifest  # noqa: PLC0415 - the import is part of what is measured

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        shutil.copytree(ASSETS, folder / "assets")
        if scenario == "matrix":
            path = _write_matrix(folder, jobs)
        elif scenario == "yaml":
            path = _write_yaml(folder, jobs)
        else:
            path = _write_rows(folder, jobs, scenario)
        size = sum(f.stat().st_size for f in folder.iterdir() if f.is_file())
        start = time.perf_counter()
        manifest = load_manifest(path)
        seconds = time.perf_counter() - start
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    known, unknown = manifest.billable_seconds()
    return {
        "scenario": scenario,
        "jobs": len(manifest.jobs),
        "input_mb": round(size / 2**20, 2),
        "seconds": round(seconds, 3),
        "jobs_per_second": round(len(manifest.jobs) / seconds),
        "peak_rss_mb": round(rss_mb, 1),
        "billable_seconds": known,
        "unknown_seconds_jobs": unknown,
        "within_target": seconds < TARGET_SECONDS and rss_mb < TARGET_RSS_MB,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100_000)
    parser.add_argument("--scenario", choices=SCENARIOS, action="append", help="default: all")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    scenarios = args.scenario or list(SCENARIOS)
    if args.child:
        print(json.dumps(run_one(scenarios[0], args.jobs)))
        return 0
    results = []
    for scenario in scenarios:
        done = subprocess.run(
            [sys.executable, __file__, "--child", "--scenario", scenario, "--jobs", str(args.jobs)],
            check=True, capture_output=True, text=True, cwd=ROOT,
        )
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(json.dumps({"bench": "validate", "target": {"seconds": TARGET_SECONDS, "peak_rss_mb": TARGET_RSS_MB},
                      "results": results}))
    print(f"{'scenario':<8} {'jobs':>8} {'input MB':>9} {'seconds':>8} {'jobs/s':>8} {'peak RSS MB':>12}  ok")
    for r in results:
        print(f"{r['scenario']:<8} {r['jobs']:>8} {r['input_mb']:>9} {r['seconds']:>8} {r['jobs_per_second']:>8} "
              f"{r['peak_rss_mb']:>12}  {'yes' if r['within_target'] else 'NO'}")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
