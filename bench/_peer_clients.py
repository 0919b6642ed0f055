"""The two peers `bench.peers` compares the runner with, each run as its own process.

    python -m bench._peer_clients baseline|sdk --base-url URL --n N --out DIR [--interval S] [--concurrency C]

* baseline - the seeds' scripts (shared/seeds): for each job in turn, create the
  task with `requests`, poll it every `interval` seconds until it ends, then
  download the video. One job at a time, no retries.
* sdk - the official `dashscope` SDK: `VideoSynthesis.async_call` then
  `VideoSynthesis.wait` (its own 1-5 s polling) per job, from a thread pool of
  `concurrency` workers, then the video fetched with `requests`.

The key comes from DASHSCOPE_API_KEY. Prints one JSON line: videos saved, failures.
Job i has the prompt "shot i: ...", the same jobs the runner gets.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import requests

from ._harness import MODEL, PROMPT
API_KEY = os.getenv("DASHSCOPE_API_KEY")


# --- the seeds' way -----------------------------------------------------------------

def create_t2v_task(base_url: str, req: dict) -> str:
    """Create a text-to-video task and return task_id (as in the t2v seed)."""
    payload: dict = {
        "model": MODEL,
        "input": {"prompt": req["prompt"]},
        "parameters": {
            "resolution": req.get("resolution", "1080P"),
            "ratio": req.get("ratio", "16:9"),
            "duration": req.get("duration", 5),
            "watermark": req.get("watermark", True),
        },
    }
    if req.get("seed") is not None:
        payload["parameters"]["seed"] = req["seed"]
    resp = requests.post(
        f"{base_url}/services/aigc/video-generation/video-synthesis",
        headers={
            "Authorization": f"Bearer {API_KEY}",
            "Content-Type": "application/json",
            "X-DashScope-Async": "enable",
        },
        json=payload,
    )
    resp.raise_for_status()
    return resp.json()["output"]["task_id"]


def poll_task(base_url: str, task_id: str, interval: float = 15) -> dict:
    while True:
        resp = requests.get(f"{base_url}/tasks/{task_id}", headers={"Authorization": f"Bearer {API_KEY}"})
        resp.raise_for_status()
        data = resp.json()
        if data["output"]["task_status"] in ("SUCCEEDED", "FAILED", "CANCELED"):
            return data
        time.sleep(interval)


def save(url: str, dest: Path) -> None:
    with requests.get(url, stream=True, timeout=60) as resp:
        resp.raise_for_status()
        with open(dest, "wb") as fh:
            for chunk in resp.iter_content(1 << 16):
                fh.write(chunk)


def baseline(base_url: str, n: int, out: Path, interval: float) -> dict:
    saved = failed = 0
    for i in range(n):
        try:
            task_id = create_t2v_task(base_url, {"prompt": PROMPT.format(seed=i), "resolution": "720P",
                                                 "duration": 5, "watermark": False, "seed": i})
            data = poll_task(base_url, task_id, interval)
            if data["output"]["task_status"] != "SUCCEEDED":
                failed += 1
                continue
            save(data["output"]["video_url"], out / f"clip-{i}.mp4")
            saved += 1
        except requests.RequestException:
            failed += 1
    return {"saved": saved, "failed": failed}


# --- the SDK's way ------------------------------------------------------------------

def sdk(base_url: str, n: int, out: Path, concurrency: int) -> dict:
    import dashscope
    from dashscope import VideoSynthesis

    dashscope.base_http_api_url = base_url

    def one(i: int) -> bool:
        created = VideoSynthesis.async_call(model=MODEL, prompt=PROMPT.format(seed=i), resolution="720P", duration=5,
                                            watermark=False, seed=i, api_key=API_KEY)
        if created.status_code != 200:
            return False
        result = VideoSynthesis.wait(created, api_key=API_KEY)
        if result.status_code != 200 or result.output.task_status != "SUCCEEDED":
            return False
        try:
            save(result.output.video_url, out / f"clip-{i}.mp4")
        except requests.RequestException:
            return False
        return True

    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        done = list(pool.map(one, range(n)))
    return {"saved": sum(done), "failed": len(done) - sum(done)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("peer", choices=("baseline", "sdk"))
    parser.add_argument("--base-url", required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--interval", type=float, default=15.0, help="baseline: seconds between polls")
    parser.add_argument("--concurrency", type=int, default=8, help="sdk: worker threads")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    if args.peer == "baseline":
        result = baseline(args.base_url, args.n, args.out, args.interval)
    else:
        result = sdk(args.base_url, args.n, args.out, args.concurrency)
    print(json.dumps(result))
    return 0 if result["failed"] == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
