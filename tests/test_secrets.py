"""The API key never reaches the output folder or the terminal, whatever happens during a run.

A real `python -m runner` process runs a campaign against a simulator that
fails tasks, answers 5xx and 429, drops connections and truncates downloads,
with a local image that has to be uploaded; then `status`, `validate` and
`cancel` run on the same campaign, and a run with a wrong key is refused.
Every byte printed and every file left under the output folder is searched for
the key (as is, and URL- or base64-encoded).
"""

from __future__ import annotations

import asyncio
import base64
import os
import secrets
import shutil
import sys
import urllib.parse
from pathlib import Path

import yaml

from runner._sim import Faults, SimConfig, Simulator

ROOT = Path(__file__).resolve().parent.parent
ASSETS = ROOT / "jobs" / "assets"


def _forms(key: str) -> list[bytes]:
    """The key as it could leak: plain, URL-quoted, base64 of itself and of 'Bearer key'."""
    return [key.encode(), urllib.parse.quote(key).encode(), base64.b64encode(key.encode()),
            base64.b64encode(f"Bearer {key}".encode())[:-4]]


def _leaks(data: bytes, key: str) -> bool:
    return any(form in data for form in _forms(key))


def _manifest(folder: Path, base_url: str) -> Path:
    shutil.copy(ASSETS / "portrait.png", folder / "portrait.png")
    jobs = [{"name": f"t2v-{i}", "model": "happyhorse-1.0-t2v", "prompt": f"shot {i}", "duration": 3} for i in range(10)]
    jobs.append({"name": "i2v-local", "model": "happyhorse-1.0-i2v", "first_frame": "portrait.png",
                 "prompt": "turns", "duration": 3})
    doc = {"campaign": "secrets", "base_url": base_url, "output_dir": str(folder / "out"),
           "limits": {"submit_rps": 50, "query_rps": 50, "max_in_flight": 6, "poll_interval": 1, "max_attempts": 2},
           "defaults": {"resolution": "720P"}, "jobs": jobs}
    path = folder / "m.yaml"
    path.write_text(yaml.safe_dump(doc), encoding="utf-8")
    return path


async def _runner(*args: str, key: str, cwd: Path) -> tuple[int, bytes]:
    env = {**os.environ, "DASHSCOPE_API_KEY": key}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", *args, cwd=cwd, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out


def _files_leaking(folder: Path, key: str) -> list[str]:
    return [str(p.relative_to(folder)) for p in sorted(folder.rglob("*")) if p.is_file() and _leaks(p.read_bytes(), key)]


def test_leak_check_finds_each_encoding(tmp_path):
    """The search itself finds the key plain, URL-quoted and base64-encoded (so a clean result means something)."""
    key = "sk-" + secrets.token_hex(8) + "/+="
    for i, form in enumerate(_forms(key)):
        (tmp_path / f"f{i}").write_bytes(b"x" + form + b"y")
    assert len(_files_leaking(tmp_path, key)) == len(_forms(key))
    assert not _leaks(b"nothing here", key)


async def test_key_never_printed_or_written_in_a_faulty_run_and_status_validate_cancel(tmp_path):
    """With failures, retries, drops, truncations and an upload, the key is in no output file and no printed byte."""
    key = "sk-SECRET-" + secrets.token_hex(12)
    faults = Faults(fail_rate=0.3, error_rate=0.1, drop_rate=0.05, throttle_rate=0.05, truncate_rate=0.15)
    config = SimConfig(api_key=key, time_scale=600, faults=faults, seed=3, submit_rps=0, query_rps=0)
    async with Simulator(config) as sim:
        path = _manifest(tmp_path, sim.base_url)
        code, printed = await _runner(str(path), "--base-url", sim.base_url, "--progress", "plain",
                                      "--poll-interval", "0.05", "--reconcile-grace", "0.5", key=key, cwd=tmp_path)
        outputs = [printed]
        for command in ("status", "validate"):
            got, text = await _runner(command, str(path), key=key, cwd=tmp_path)
            assert got == 0, text.decode()
            outputs.append(text)
        _, text = await _runner("cancel", str(path), "--base-url", sim.base_url, key=key, cwd=tmp_path)
        outputs.append(text)
        # the run really went through failures and retries, and uploaded the local image
        assert code in (0, 1), printed.decode()
        assert sum(1 for r in sim.requests if r.status != 200) >= 3
        assert sim.count("upload", 200) >= 1
        assert any(r.status is None for r in sim.requests)
    out = tmp_path / "out"
    assert list((out / "videos").glob("*.mp4")) and list((out / "logs").glob("*.jsonl"))
    assert _files_leaking(out, key) == []
    for text in outputs:
        assert not _leaks(text, key), text.decode(errors="replace")


async def test_a_wrong_key_is_refused_without_being_printed(tmp_path):
    """A run with a key the service refuses exits 5 and neither prints nor writes that key."""
    async with Simulator(SimConfig(api_key="sk-the-right-one", time_scale=600)) as sim:
        path = _manifest(tmp_path, sim.base_url)
        wrong = "sk-WRONG-" + secrets.token_hex(12)
        code, printed = await _runner(str(path), "--base-url", sim.base_url, "--progress", "plain", key=wrong,
                                      cwd=tmp_path)
        assert sim.count("policy", 401) + sim.count("create", 401) >= 1
    assert code == 5, printed.decode()
    assert not _leaks(printed, wrong)
    assert _files_leaking(tmp_path / "out", wrong) == []
