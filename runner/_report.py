"""What a run leaves behind: `videos/<name>.json` per job, `runs/<run-id>.json` and `.csv`, a summary table.

Reports are built from journal rows (`JobRow`) only, so a report written after
a resume describes the whole life of a job, not just the last run. They hold
no secret: the request bodies in the journal never contain the API key.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from ._journal import HistoryEntry, JobRow
from ._schedule import STATE_ORDER, State

CSV_COLUMNS = (
    "name", "model", "state", "task_id", "attempts", "video", "sha256", "size",
    "error_code", "error_message", "submitted_at", "finished_at", "output_video_duration",
)


def _iso(at: float | None) -> str | None:
    return None if at is None else datetime.fromtimestamp(at, timezone.utc).isoformat(timespec="milliseconds")


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def job_report(row: JobRow, history: Iterable[HistoryEntry]) -> dict[str, Any]:
    """The `videos/<name>.json` document of one job."""
    return {
        "name": row.name,
        "model": row.model,
        "state": str(row.state),
        "request": row.body,
        "sent_request": row.sent_body,
        "task_id": row.task_id,
        "task_status": row.task_status,
        "attempts": row.attempts,
        "usage": row.usage,
        "task": row.task,
        "timings": {
            "submitted_at": _iso(row.submitted_at),
            "accepted_at": _iso(row.accepted_at),
            "finished_at": _iso(row.finished_at),
            "seconds_to_finish": None if row.finished_at is None or row.submitted_at is None
            else round(row.finished_at - row.submitted_at, 3),
        },
        "video": None if row.video_path is None else {"path": row.video_path, "sha256": row.sha256, "size": row.size},
        "error": None if row.error_code is None and row.error_message is None
        else {"code": row.error_code, "message": row.error_message},
        "history": [
            {"at": _iso(h.at), "state": h.state, "task_id": h.task_id, **({"detail": h.detail} if h.detail else {})}
            for h in history
        ],
    }


def write_job_report(videos_dir: Path, stem: str, row: JobRow, history: Iterable[HistoryEntry]) -> Path:
    """Write `<videos_dir>/<stem>.json` atomically; returns its path."""
    path = Path(videos_dir) / f"{stem}.json"
    _write_atomic(path, json.dumps(job_report(row, history), indent=2, ensure_ascii=False, default=str) + "\n")
    return path


@dataclass(frozen=True, slots=True)
class RunSummary:
    """The facts `runs/<run-id>.json` records."""

    run_id: str
    campaign: str
    manifest: str
    started_at: float
    ended_at: float
    exit_code: int
    counts: Mapping[str, int]
    interrupted: bool
    account_error: str | None


def csv_row(row: JobRow) -> dict[str, Any]:
    return {
        "name": row.name, "model": row.model, "state": str(row.state), "task_id": row.task_id or "",
        "attempts": row.attempts, "video": row.video_path or "", "sha256": row.sha256 or "",
        "size": row.size if row.size is not None else "", "error_code": row.error_code or "",
        "error_message": row.error_message or "", "submitted_at": _iso(row.submitted_at) or "",
        "finished_at": _iso(row.finished_at) or "",
        "output_video_duration": (row.usage or {}).get("output_video_duration", ""),
    }


def write_run_reports(runs_dir: Path, summary: RunSummary, rows: Iterable[JobRow]) -> tuple[Path, Path]:
    """Write `runs/<run-id>.csv` (one row per job, streamed) and `runs/<run-id>.json`.

    The JSON lists every job that did not end done, with the reason.
    """
    runs_dir = Path(runs_dir)
    runs_dir.mkdir(parents=True, exist_ok=True)
    csv_path = runs_dir / f"{summary.run_id}.csv"
    tmp = csv_path.with_name(f".{csv_path.name}.tmp")
    not_done: list[dict[str, Any]] = []
    usage_seconds = 0
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_COLUMNS)
        writer.writeheader()
        for row in rows:
            writer.writerow(csv_row(row))
            if row.state is State.DONE:
                usage_seconds += int((row.usage or {}).get("output_video_duration") or 0)
            else:
                not_done.append({"name": row.name, "state": str(row.state), "task_id": row.task_id,
                                 "code": row.error_code, "message": row.error_message})
    os.replace(tmp, csv_path)
    doc = {
        "run_id": summary.run_id,
        "campaign": summary.campaign,
        "manifest": summary.manifest,
        "started_at": _iso(summary.started_at),
        "ended_at": _iso(summary.ended_at),
        "seconds": round(summary.ended_at - summary.started_at, 3),
        "exit_code": summary.exit_code,
        "interrupted": summary.interrupted,
        "account_error": summary.account_error,
        "counts": dict(summary.counts),
        "jobs": sum(summary.counts.values()),
        "video_seconds_done": usage_seconds,
        "not_done": not_done,
        "results_csv": str(csv_path),
    }
    json_path = runs_dir / f"{summary.run_id}.json"
    _write_atomic(json_path, json.dumps(doc, indent=2, ensure_ascii=False) + "\n")
    return json_path, csv_path


def counts_table(counts: Mapping[str, int]) -> Table:
    """A two-column table of jobs per state, in life-cycle order, with a total."""
    table = Table(show_edge=False)
    table.add_column("state")
    table.add_column("jobs", justify="right")
    for state in STATE_ORDER:
        if counts.get(state):
            table.add_row(str(state), str(counts[state]))
    table.add_row("total", str(sum(counts.values())), style="bold")
    return table


def failures_table(rows: Iterable[JobRow], limit: int = 20) -> Table | None:
    """A table of jobs that did not end done (first `limit`), or None when there are none."""
    table = Table(title="jobs not done", title_justify="left", show_edge=False)
    for col in ("job", "state", "task", "why"):
        table.add_column(col, overflow="fold")
    shown = extra = 0
    for row in rows:
        if row.state is State.DONE:
            continue
        if shown >= limit:
            extra += 1
            continue
        why = ": ".join(x for x in (row.error_code, row.error_message) if x) or "-"
        table.add_row(row.name, str(row.state), row.task_id or "-", why)
        shown += 1
    if not shown:
        return None
    if extra:
        table.caption = f"... and {extra} more (see the run's CSV)"
    return table


def print_summary(console: Console, summary: RunSummary, rows: Iterable[JobRow], paths: tuple[Path, Path]) -> None:
    """The end-of-run summary: counts per state, the jobs not done, where the reports are."""
    console.print(f"run {summary.run_id} of campaign {summary.campaign}", style="bold", highlight=False, soft_wrap=True)
    console.print(counts_table(summary.counts))
    table = failures_table(rows)
    if table is not None:
        console.print(table)
    console.print(f"summary: {paths[0]}\nresults: {paths[1]}", highlight=False, soft_wrap=True)
