"""`python -m runner run|status|cancel MANIFEST`: the commands around the engine.

`run` loads the manifest (exit 2 on any problem, nothing sent), takes the
campaign lock (exit 4 when held), plans the jobs into the journal, drives the
engine with a progress display, writes the reports and returns the exit code.
SIGINT/SIGTERM stop it cleanly (exit 3); a second signal exits at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import os
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ._credentials import HOW_TO_SET, load_api_key
from ._engine import Engine, EngineOptions, video_stem
from ._errors import AccountError, ApiError, UsageError
from ._journal import CampaignLock, Journal, JobRow, PlannedJob
from ._progress import MODES, Progress, Snapshot
from ._report import RunSummary, counts_table, print_summary, write_job_report, write_run_reports
from ._retry import RetryPolicy
from ._schedule import State, exit_code_for

#: how much faster than real time the simulator runs under --simulate
SIM_TIME_SCALE = 200.0
#: share of a quota the limiters space requests at: they leave evenly spaced, but a few
#: milliseconds of jitter on the way would otherwise put one request too many in the quota's second
PACING = 0.98


# --- run -------------------------------------------------------------------------

def configure_run(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="the campaign's YAML manifest")
    parser.add_argument("--simulate", action="store_true",
                        help="run against the built-in simulator (fast clock, throwaway key); nothing is billed")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: the manifest's)")
    parser.add_argument("--recreate-expired", action="store_true",
                        help="create again the tasks whose id expired (UNKNOWN) before their video was saved")
    parser.add_argument("--progress", choices=MODES, default="auto",
                        help="live display (rich), one line per change (plain), or none; auto picks by terminal")
    parser.add_argument("--base-url", default=None, help="API base URL, overriding the manifest's")
    parser.add_argument("--reconcile-grace", type=float, default=None, metavar="SECONDS",
                        help="how long a create whose answer was lost stays unlisted before it is sent again "
                             "(default 60, under --simulate 2)")
    parser.add_argument("--poll-interval", type=float, default=None, metavar="SECONDS",
                        help="seconds between two polls of one task, overriding the manifest's")
    parser.add_argument("--check-urls", action="store_true",
                        help="before submitting, check remote media URLs: reachable, right type, not too big")


def main_run(args: argparse.Namespace) -> int:
    from ._manifest import load_manifest

    manifest = load_manifest(args.manifest)
    if args.check_urls:
        from ._validate_cli import remote_media_ok

        if not remote_media_ok(manifest):
            return UsageError.exit_code
    key = None if args.simulate else _api_key()
    return asyncio.run(_run(args, manifest, key))


def _api_key() -> str:
    """The API key (`runner._credentials`); UsageError saying how to set one when there is none."""
    key = load_api_key()
    if not key:
        raise UsageError(HOW_TO_SET)
    return key


def run_id_now() -> str:
    return time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)


def file_intact(row: JobRow) -> bool:
    """True when a done job's saved video is there with the sha256 the journal recorded."""
    if not row.video_path or not row.sha256:
        return False
    try:
        with open(row.video_path, "rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest() == row.sha256
    except OSError:
        return False


@contextlib.asynccontextmanager
async def _api(args: argparse.Namespace, manifest: Any, key: str | None) -> AsyncIterator[tuple[str, str, float]]:
    """(base URL, API key, time scale): the simulator's under --simulate, else the manifest's."""
    if not args.simulate:
        yield args.base_url or manifest.base_url, key or "", 1.0
        return
    from ._sim import SimConfig, Simulator

    throwaway = "sk-sim-" + secrets.token_hex(8)
    config = SimConfig(api_key=throwaway, time_scale=SIM_TIME_SCALE)
    async with Simulator(config) as sim:
        yield sim.base_url, throwaway, SIM_TIME_SCALE


def _install_signals(loop: asyncio.AbstractEventLoop, on_first: Callable[[], None]) -> Callable[[], None]:
    """SIGINT/SIGTERM: the first stops the run cleanly, a second exits at once. Returns the undo."""
    state = {"seen": 0}

    def handler(signum: int) -> None:
        state["seen"] += 1
        if state["seen"] > 1:
            os._exit(3)  # a second signal: leave now (the journal is consistent after every write)
        print(f"\n{signal.Signals(signum).name}: stopping; a second one exits at once", file=sys.stderr)
        on_first()

    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, handler, sig)
            installed.append(sig)

    def undo() -> None:
        for sig in installed:
            loop.remove_signal_handler(sig)

    return undo


async def _run(args: argparse.Namespace, manifest: Any, key: str | None) -> int:
    from ._client import DashScopeClient
    from ._limits import AdaptiveLimiter
    from ._runlog import RunLog

    output_dir = Path(args.output) if args.output else Path(manifest.output_dir)
    limits = manifest.limits
    with CampaignLock(output_dir), Journal.open(output_dir) as journal:
        run_id = run_id_now()
        journal.start_run(run_id)
        started = time.time()
        journal.plan(
            (PlannedJob(j.name, j.key, j.model, j.body) for j in manifest.jobs), run_id,
            max_attempts=limits.max_attempts, recreate_expired=args.recreate_expired, file_intact=file_intact,
        )
        async with _api(args, manifest, key) as (base_url, api_key, scale):
            poll_interval = args.poll_interval if args.poll_interval is not None else limits.poll_interval / scale
            grace = args.reconcile_grace if args.reconcile_grace is not None else (2.0 if args.simulate else 60.0)
            options = EngineOptions(
                max_in_flight=limits.max_in_flight, poll_interval=max(0.01, poll_interval),
                max_attempts=limits.max_attempts, recreate_expired=args.recreate_expired,
                reconcile_grace=grace, reconcile_delay=min(2.0, grace / 2),
                retry=RetryPolicy(base=0.2, cap=5.0) if args.simulate else RetryPolicy(),
            )
            videos = output_dir / "videos"

            def job_ended(row: JobRow) -> None:
                write_job_report(videos, video_stem(row.name), row, journal.history(row.name))

            async with DashScopeClient(base_url, api_key) as client:
                with RunLog(output_dir / "logs", api_key) as runlog:
                    engine = Engine(
                        journal=journal, client=client, run_id=run_id, output_dir=output_dir, options=options,
                        submit_limiter=AdaptiveLimiter(limits.submit_rps, pacing=PACING, probe_first=True),
                        query_limiter=AdaptiveLimiter(limits.query_rps, pacing=PACING),
                        jobs={j.name: j for j in manifest.jobs}, uploader=_uploader(client, journal, options),
                        verify=_verifier(), runlog=runlog, on_job_end=job_ended,
                    )
                    undo_signals = _install_signals(asyncio.get_running_loop(), engine.stop)
                    progress = Progress(
                        lambda: Snapshot(journal.counts(plan=run_id),
                                         [(f.name, f"{f.code}: {f.message}" if f.code else f.message)
                                          for f in engine.recent_failures]),
                        mode=args.progress,
                    )
                    shown = asyncio.create_task(progress.run())
                    try:
                        result = await engine.run()
                    finally:
                        undo_signals()
                        shown.cancel()
                        with contextlib.suppress(asyncio.CancelledError):
                            await shown
                    if progress.mode == "plain":
                        progress.refresh()
        counts = journal.counts(plan=run_id)
        code = exit_code_for(counts, account_error=result.account_error is not None, interrupted=result.interrupted)
        summary = RunSummary(
            run_id=run_id, campaign=manifest.campaign, manifest=str(manifest.path), started_at=started,
            ended_at=time.time(), exit_code=code, counts=counts, interrupted=result.interrupted,
            account_error=None if result.account_error is None else str(result.account_error),
        )
        paths = write_run_reports(output_dir / "runs", summary, journal.rows(plan=run_id))
        journal.finish_run(run_id, code, {"counts": counts})
        # the summary lists only the jobs not done: read those, not the whole plan a second time
        not_done = journal.in_states([s for s in State if s is not State.DONE], plan=run_id)
        print_summary(Console(), summary, not_done, paths)
    if result.interrupted:
        print("interrupted: re-run the same command to continue where this run stopped", file=sys.stderr)
    if result.account_error is not None:
        print(f"error: account: {result.account_error}; new submissions were stopped. "
              "Fix the account (key, balance, quota) and re-run the same command.", file=sys.stderr)
    return code


def _uploader(client: Any, journal: Journal, options: EngineOptions) -> Any:
    try:
        from ._upload import Uploader
    except ImportError:  # pragma: no cover - the media work landed with the engine
        return None
    return Uploader(client, journal, policy=options.retry)


def _verifier() -> Callable[[Path, Any, Any], str | None] | None:
    try:
        from ._verify import verify_video
    except ImportError:  # pragma: no cover
        return None
    return verify_video


# --- status ----------------------------------------------------------------------

def configure_status(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="the campaign's YAML manifest")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: the manifest's)")
    parser.add_argument("--limit", type=int, default=200, help="most jobs listed (default 200; 0 for all)")


def _output_dir_of(args: argparse.Namespace) -> Path:
    from ._manifest import load_manifest

    if args.output:
        return Path(args.output)
    return Path(load_manifest(args.manifest, check_media=False).output_dir)


def _read_journal(output_dir: Path) -> Journal:
    """The campaign's journal, opened read-only; UsageError when the campaign has not run yet."""
    try:
        return Journal.open(output_dir, readonly=True)
    except FileNotFoundError:
        raise UsageError(f"no journal in {output_dir}: this campaign has not run yet") from None


def main_status(args: argparse.Namespace) -> int:
    output_dir = _output_dir_of(args)
    console = Console()
    with _read_journal(output_dir) as journal:
        last = journal.last_run()
        held = _lock_held(output_dir)
        title = f"{output_dir}" + (" (a run is in progress)" if held else "")
        if last:
            title += f" - last run {last['run_id']}" + (f", exit {last['exit_code']}" if last["exit_code"] is not None else "")
        console.print(title, style="bold", highlight=False, soft_wrap=True)
        console.print(counts_table(journal.counts()))
        table = Table(show_edge=False)
        for col in ("job", "state", "task", "attempts", "error"):
            table.add_column(col, overflow="fold", no_wrap=col == "task")
        shown = 0
        total = 0
        for row in journal.rows():
            total += 1
            if args.limit and shown >= args.limit:
                continue
            why = ": ".join(x for x in (row.error_code, row.error_message) if x)
            table.add_row(row.name, str(row.state), row.task_id or "-", str(row.attempts), why or "")
            shown += 1
        if shown:
            console.print(table)
        if shown < total:
            console.print(f"... {total - shown} more jobs (use --limit 0 to list all)")
    return 0


def _lock_held(output_dir: Path) -> bool:
    from ._errors import LockHeld

    lock = CampaignLock(output_dir)
    if not lock.path.exists():
        return False
    try:
        lock.acquire()
    except LockHeld:
        return True
    except OSError:
        return False
    lock.release()
    return False


# --- cancel ----------------------------------------------------------------------

def configure_cancel(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", type=Path, help="the campaign's YAML manifest")
    parser.add_argument("--output", type=Path, default=None, help="output folder (default: the manifest's)")
    parser.add_argument("--base-url", default=None, help="API base URL, overriding the manifest's")


def main_cancel(args: argparse.Namespace) -> int:
    from ._manifest import load_manifest

    manifest = load_manifest(args.manifest, check_media=False)
    output_dir = Path(args.output) if args.output else Path(manifest.output_dir)
    key = _api_key()
    with _read_journal(output_dir) as journal:
        pending = [(r.name, r.task_id) for r in journal.in_states([State.PENDING]) if r.task_id]
    return asyncio.run(_cancel(args.base_url or manifest.base_url, key, pending))


async def _cancel(base_url: str, key: str, pending: list[tuple[str, str]]) -> int:
    from ._client import DashScopeClient

    cancelled = refused = 0
    async with DashScopeClient(base_url, key) as client:
        for name, task_id in pending:
            try:
                await client.cancel(task_id)
            except AccountError:
                raise
            except ApiError as exc:
                refused += 1
                print(f"{name}: not cancelled: {exc}", file=sys.stderr)
            else:
                cancelled += 1
    print(f"cancelled {cancelled} pending task(s)" + (f"; {refused} could not be (already running or done)" if refused else ""))
    return 0 if not refused else 1

