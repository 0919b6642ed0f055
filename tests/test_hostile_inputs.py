"""Hostile manifests: each one is refused with one line per issue and exit 2, and nothing reaches the API.

Every case is run through the real command line (`runner._cli.main`, in a
worker thread so the simulator keeps serving) as `run X --base-url <simulator>`
and as `validate X`; a few are also run as a real `python -m runner`
subprocess. The simulator's request log must stay empty and no traceback may
be printed.
"""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from runner import _cli

ROOT = Path(__file__).resolve().parent.parent
KEY = "sk-test"
#: longest line a refusal may print (a 10 MB prompt must not be echoed back)
MAX_LINE = 400

HEAD = "campaign: hostile\n"
T2V = "    model: happyhorse-1.0-t2v\n"


def _write(name: str, content: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
        return path
    return make


def _with_rows(name: str, rows: str | bytes) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        (folder / name).write_bytes(rows if isinstance(rows, bytes) else rows.encode("utf-8"))
        path = folder / "m.yaml"
        path.write_text(HEAD + f"defaults:\n  model: happyhorse-1.0-t2v\njobs_from: {name}\n", encoding="utf-8")
        return path
    return make


def _huge(folder: Path) -> Path:
    path = folder / "huge.yaml"
    with open(path, "wb") as fh:
        fh.write(HEAD.encode())
        fh.truncate(51 * 2**20)  # sparse: above the 50 MB limit without writing it
    return path


def _laughs() -> str:
    lines = [HEAD, "x-a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"x-a{i}: &a{i} [{refs}]\n")
    lines.append("jobs:\n  - name: laugh\n" + T2V + "    prompt: *a9\n")
    return "".join(lines)


def _job(**fields: str) -> str:
    text = "jobs:\n  - name: one\n" + T2V
    return text + "".join(f"    {k}: {v}\n" for k, v in fields.items())


I2V = "jobs:\n  - name: one\n    model: happyhorse-1.0-i2v\n    prompt: p\n"

CASES: dict[str, Callable[[Path], Path]] = {
    "malformed YAML": _write("m.yaml", HEAD + "jobs: [\n  - name: a\n    prompt: {unclosed\n"),
    "tab-indented YAML": _write("m.yaml", HEAD + "jobs:\n\t- name: a\n"),
    "empty file": _write("m.yaml", ""),
    "huge file": _huge,
    "name with path traversal": _write("m.yaml", HEAD + "jobs:\n  - name: ../../etc/cron.d/evil\n" + T2V
                                       + "    prompt: p\n"),
    "name that is only dots": _write("m.yaml", HEAD + "jobs:\n  - name: ..\n" + T2V + "    prompt: p\n"),
    "absolute name": _write("m.yaml", HEAD + "jobs:\n  - name: /tmp/evil\n" + T2V + "    prompt: p\n"),
    "campaign with traversal": _write("m.yaml", "campaign: ../../evil\njobs:\n  - name: a\n" + T2V + "    prompt: p\n"),
    "python/object/apply tag": _write("m.yaml", HEAD + "jobs:\n  - name: a\n" + T2V
                                      + "    prompt: !!python/object/apply:os.system ['touch PWNED']\n"),
    "python/name tag at the top": _write("m.yaml", "!!python/name:os.system\n"),
    "unknown local tag": _write("m.yaml", HEAD + "jobs: !include other.yaml\n"),
    "file:// media URL": _write("m.yaml", HEAD + I2V + "    first_frame: file:///etc/passwd\n"),
    "ftp:// media URL": _write("m.yaml", HEAD + I2V + "    first_frame: ftp://example.com/a.png\n"),
    "javascript: media URL": _write("m.yaml", HEAD + I2V + "    first_frame: 'javascript:alert(1)'\n"),
    "media path outside as traversal": _write("m.yaml", HEAD + I2V + "    first_frame: ../../../../../etc/passwd\n"),
    "file:// base_url": _write("m.yaml", HEAD + "base_url: file:///etc/passwd\n" + _job(prompt="p")),
    "10 MB prompt": _write("m.yaml", HEAD + _job(prompt="x" * (10 * 2**20))),
    "billion laughs": _write("m.yaml", _laughs()),
    "non-UTF-8 bytes": _write("m.yaml", HEAD.encode() + b"jobs:\n  - name: caf\xe9\n    prompt: \xff\xfe\n"),
    "NUL bytes": _write("m.yaml", HEAD + "jobs:\n  - name: a\x00b\n"),
    "manifest that is a list": _write("m.yaml", "- campaign: x\n- jobs: []\n"),
    "manifest that is a scalar": _write("m.yaml", "just a string\n"),
    "deeply nested": _write("m.yaml", HEAD + "x-deep: " + "[" * 5000 + "]" * 5000 + "\n"),
    "jobs is a mapping": _write("m.yaml", HEAD + "jobs: {name: a}\n"),
    "output_dir that is a number": _write("m.yaml", HEAD + "output_dir: 5\n" + _job(prompt="p")),
    "output_dir that is a list": _write("m.yaml", HEAD + "output_dir: [a]\n" + _job(prompt="p")),
    "duplicate keys": _write("m.yaml", HEAD + "campaign: other\njobs: []\n"),
    "CSV with traversal names": _with_rows("rows.csv", "name,prompt\n../../evil,p\nok,p\n..\\\\win,p\n"),
    "CSV with non-UTF-8 bytes": _with_rows("rows.csv", b"name,prompt\nbad\xff,p\n"),
    "JSONL that is not objects": _with_rows("rows.jsonl", '["a", "b"]\n42\n'),
    "jobs file that is a device": _write("m.yaml", HEAD + "jobs_from: /dev/zero.csv\n"),
    "jobs file outside by traversal": _write("m.yaml", HEAD + "jobs_from: ../../../../../../etc/passwd.csv\n"),
    "jobs file name with a NUL byte": _write("m.yaml", HEAD + 'jobs_from: "rows\\0.csv"\n'),
    "jobs file given as a URL": _write("m.yaml", HEAD + "jobs_from: http://127.0.0.1:1/rows.csv\n"),
    "manifest is a directory": lambda folder: folder,
}


async def _cli_main(argv: list[str]) -> int:
    return await asyncio.to_thread(_cli.main, argv)


@pytest.fixture
def hostile_env(monkeypatch, tmp_path):
    """The key in the environment and the working directory in a scratch folder."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def _assert_refused(code: int, out: str, err: str, sim, folder: Path) -> None:
    assert code == 2, (code, out[-2000:], err[-2000:])
    assert "Traceback" not in out + err
    lines = [line.removeprefix("error: ") for line in err.splitlines() if line.strip()]
    assert lines, "no issue printed"
    # one line per issue, each located in the manifest or its rows file; `validate` adds a count
    located = [line for line in lines if not re.fullmatch(r"\d+ issues? found; nothing was sent", line)]
    assert located and all(line.startswith(str(folder)) for line in located), err[:2000]
    assert all(len(line) <= MAX_LINE for line in (out + err).splitlines()), "an issue line is too long"
    assert sim.requests == [], [r.kind for r in sim.requests]


@pytest.mark.parametrize("command", ["run", "validate"])
@pytest.mark.parametrize("case", list(CASES))
async def test_hostile_manifest_is_refused_with_exit_2_and_nothing_sent(case, command, simulator, hostile_env, capsys):
    """A hostile manifest gets one line per issue, exit 2, no traceback, and the API sees no request."""
    folder = hostile_env / "case"
    folder.mkdir()
    path = CASES[case](folder)
    argv = [command, str(path)] + (["--base-url", simulator.base_url] if command == "run" else [])
    code = await _cli_main(argv)
    out, err = capsys.readouterr()
    _assert_refused(code, out, err, simulator, folder)
    assert not (hostile_env / "PWNED").exists() and not (folder / "PWNED").exists()
    assert not (hostile_env / "output").exists(), "a refused manifest must not create its output folder"


@pytest.mark.parametrize("case", ["python/object/apply tag", "billion laughs", "non-UTF-8 bytes",
                                  "CSV with traversal names", "10 MB prompt"])
async def test_hostile_manifest_through_python_m_runner(case, simulator, tmp_path):
    """As a real `python -m runner X --base-url URL` process: exit 2, one-line issues, no traceback, nothing sent."""
    path = CASES[case](tmp_path)
    env = {**os.environ, "DASHSCOPE_API_KEY": KEY}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "runner", str(path), "--base-url", simulator.base_url, cwd=tmp_path, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    _assert_refused(proc.returncode or 0, out.decode(), err.decode(), simulator, tmp_path)
    assert not (tmp_path / "PWNED").exists()


def test_a_missing_manifest_is_a_usage_error(tmp_path, capsys, monkeypatch):
    """A manifest path that does not exist is one line and exit 2."""
    monkeypatch.setenv("DASHSCOPE_API_KEY", KEY)
    code = _cli.main(["validate", str(tmp_path / "nope.yaml")])
    out, err = capsys.readouterr()
    assert code == 2 and "does not exist" in err and "Traceback" not in err


def test_cases_cover_the_brief():
    """The corpus holds every kind of hostile input the reliability brief lists (guards against trimming it)."""
    wanted = ["malformed YAML", "huge file", "name with path traversal", "python/object/apply tag", "file:// media URL",
              "ftp:// media URL", "javascript: media URL", "10 MB prompt", "billion laughs", "non-UTF-8 bytes",
              "manifest that is a list", "CSV with traversal names"]
    assert set(wanted) <= set(CASES)
