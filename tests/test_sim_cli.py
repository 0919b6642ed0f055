"""`python -m runner simulate`: options, a server another process can use, a clean Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import socket
import sys
from pathlib import Path

import pytest

from runner._errors import UsageError
from runner._sim import cli

ROOT = Path(__file__).resolve().parent.parent


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    cli.configure(parser)
    return parser.parse_args(list(argv))


def test_options_become_the_config(monkeypatch):
    """Every option lands in SimConfig / Faults; the key falls back to $DASHSCOPE_API_KEY."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", "sk-from-env")
    config = cli.config_from_args(parse(
        "--port", "8123", "--time-scale", "60", "--submit-rps", "5", "--query-rps", "7", "--concurrency", "3",
        "--fail-rate", "0.1", "--truncate-rate", "0.2", "--account-error", "Arrearage", "--account-error-after", "4",
        "--seed", "9", "--url-ttl", "100"))
    assert (config.port, config.time_scale, config.submit_rps, config.query_rps, config.concurrency) == (8123, 60, 5, 7, 3)
    assert (config.seed, config.url_ttl, config.api_key) == (9, 100, "sk-from-env")
    assert (config.faults.fail_rate, config.faults.truncate_rate) == (0.1, 0.2)
    assert (config.faults.account_error, config.faults.account_error_after) == ("Arrearage", 4)
    assert cli.config_from_args(parse("--api-key", "sk-given")).api_key == "sk-given"


def test_impossible_option_is_a_usage_error():
    """A rate above 1 is reported as a UsageError (exit 2), not a traceback."""
    with pytest.raises(UsageError) as caught:
        cli.main(parse("--fail-rate", "2"))
    assert caught.value.exit_code == 2


@pytest.mark.parametrize("option", [("--time-scale", "0"), ("--submit-rps", "-1"), ("--query-rps", "-5")])
def test_impossible_speed_or_quota_is_a_usage_error(option):
    """A time scale of 0 or a negative quota is a UsageError (exit 2), not a traceback from the clock."""
    with pytest.raises(UsageError) as caught:
        cli.main(parse(*option))
    assert caught.value.exit_code == 2


async def test_an_address_in_use_is_a_usage_error():
    """A port another socket holds is a UsageError naming the address, not an OSError traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(UsageError, match=f"cannot listen on 127.0.0.1:{port}") as caught:
            await cli.serve(cli.config_from_args(parse("--port", str(port))))
    assert caught.value.exit_code == 2


async def test_simulate_serves_another_process_and_stops_on_ctrl_c(http):
    """The command prints its base URL (never the key), serves requests from another process, exits 0 on SIGINT."""
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    env.pop("DASHSCOPE_API_KEY", None)
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", "simulate", "--port", "0", "--api-key", "sk-cli-secret",
        "--time-scale", "100000", cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        match = re.search(r"(http://127\.0\.0\.1:\d+/api/v1)", line)
        assert match, line
        base = match.group(1)
        headers = {"Authorization": "Bearer sk-cli-secret", "X-DashScope-Async": "enable"}
        body = {"model": "happyhorse-1.0-t2v", "input": {"prompt": "p"}, "parameters": {"duration": 3}}
        async with http.post(base + "/services/aigc/video-generation/video-synthesis", json=body, headers=headers) as r:
            assert r.status == 200
            task_id = (await r.json())["output"]["task_id"]
        async with http.get(f"{base}/tasks/{task_id}", headers=headers) as r:
            assert (await r.json())["output"]["task_status"] in ("RUNNING", "SUCCEEDED")
        process.send_signal(signal.SIGINT)
        out, err = await asyncio.wait_for(process.communicate(), 30)
        assert process.returncode == 0, err
        assert b"sk-cli-secret" not in line.encode() + out + err
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
