"""The campaign journal: one SQLite file (WAL) per output folder, the single source of truth.

Every state change of a job is written here before the engine acts on it, so a
run that is killed at any point can be continued by running it again. Writes
are synchronous and never await, so an asyncio cancellation can never cut one
in half; each `transition` is one transaction that updates the job row and
appends a history row.

Also here: the campaign lock (`CampaignLock`, fcntl.flock on `<output>/.lock`)
that keeps two runs of one campaign apart, and the upload cache the media
uploader consults (`find_upload` / `record_upload`).
"""

from __future__ import annotations

import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._errors import LockHeld
from ._schedule import IN_FLIGHT, Resume, State, on_resume

JOURNAL_NAME = "journal.sqlite"
LOCK_NAME = ".lock"
#: rows per INSERT/SELECT batch at plan time and when the submitter pulls jobs
BATCH = 500

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    name TEXT PRIMARY KEY,
    seq INTEGER NOT NULL,
    plan TEXT,
    key TEXT NOT NULL,
    model TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_body TEXT,
    state TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    task_id TEXT,
    task_status TEXT,
    submitted_at REAL,
    accepted_at REAL,
    finished_at REAL,
    video_url TEXT,
    video_path TEXT,
    sha256 TEXT,
    size INTEGER,
    usage TEXT,
    task TEXT,
    error_code TEXT,
    error_message TEXT,
    retryable INTEGER NOT NULL DEFAULT 0,
    updated_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS jobs_state_seq ON jobs(state, seq);
CREATE INDEX IF NOT EXISTS jobs_plan ON jobs(plan);
CREATE TABLE IF NOT EXISTS history (
    job TEXT NOT NULL,
    at REAL NOT NULL,
    state TEXT NOT NULL,
    task_id TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS history_job ON history(job);
CREATE TABLE IF NOT EXISTS tasks (
    task_id TEXT PRIMARY KEY,
    job TEXT NOT NULL,
    adopted_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS uploads (
    content_hash TEXT NOT NULL,
    model TEXT NOT NULL,
    url TEXT NOT NULL,
    expires_at REAL NOT NULL,
    PRIMARY KEY (content_hash, model)
);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    started_at REAL NOT NULL,
    ended_at REAL,
    exit_code INTEGER,
    summary TEXT
);
"""

#: columns a transition may set
_COLUMNS = frozenset(
    {
        "sent_body", "attempts", "task_id", "task_status", "submitted_at", "accepted_at", "finished_at",
        "video_url", "video_path", "sha256", "size", "usage", "task", "error_code", "error_message",
        "retryable",
    }
)
_JSON_COLUMNS = frozenset({"sent_body", "usage", "task"})


@dataclass(frozen=True, slots=True)
class JobRow:
    """One job as the journal knows it."""

    name: str
    seq: int
    plan: str | None
    key: str
    model: str
    body: dict[str, Any]
    sent_body: dict[str, Any] | None
    state: State
    attempts: int
    task_id: str | None
    task_status: str | None
    submitted_at: float | None
    accepted_at: float | None
    finished_at: float | None
    video_url: str | None
    video_path: str | None
    sha256: str | None
    size: int | None
    usage: dict[str, Any] | None
    task: dict[str, Any] | None
    error_code: str | None
    error_message: str | None
    retryable: bool
    updated_at: float


@dataclass(frozen=True, slots=True)
class PlannedJob:
    """What planning needs of a manifest job: its name, identity key, model and create body."""

    name: str
    key: str
    model: str
    body: Mapping[str, Any]


@dataclass(frozen=True, slots=True)
class HistoryEntry:
    """One state change of a job."""

    at: float
    state: str
    task_id: str | None
    detail: dict[str, Any] | None


def _row(r: sqlite3.Row) -> JobRow:
    def loads(v: str | None) -> Any:
        return json.loads(v) if v else None

    return JobRow(
        name=r["name"], seq=r["seq"], plan=r["plan"], key=r["key"], model=r["model"],
        body=json.loads(r["body"]), sent_body=loads(r["sent_body"]), state=State(r["state"]),
        attempts=r["attempts"], task_id=r["task_id"], task_status=r["task_status"],
        submitted_at=r["submitted_at"], accepted_at=r["accepted_at"], finished_at=r["finished_at"],
        video_url=r["video_url"], video_path=r["video_path"], sha256=r["sha256"], size=r["size"],
        usage=loads(r["usage"]), task=loads(r["task"]), error_code=r["error_code"],
        error_message=r["error_message"], retryable=bool(r["retryable"]), updated_at=r["updated_at"],
    )


class Journal:
    """A campaign's SQLite journal. Open with `Journal.open(output_dir)`; close when done.

    All methods are synchronous and quick; the engine calls them from the event
    loop between awaits, which makes each write atomic with respect to
    cancellation.
    """

    def __init__(self, conn: sqlite3.Connection, path: Path, *, clock: Callable[[], float] = time.time) -> None:
        self._conn = conn
        self.path = path
        self._clock = clock

    @classmethod
    def open(cls, output_dir: Path, *, readonly: bool = False, clock: Callable[[], float] = time.time) -> Journal:
        """Open (creating if needed) `<output_dir>/journal.sqlite`.

        `readonly` opens an existing journal for reading only (the `status`
        command), which works while a run holds the lock; raises FileNotFoundError
        when there is none.
        """
        path = Path(output_dir) / JOURNAL_NAME
        if readonly:
            if not path.exists():
                raise FileNotFoundError(path)
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, isolation_level=None)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(path, isolation_level=None)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(_SCHEMA)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA busy_timeout=5000")
        return cls(conn, path, clock=clock)

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- planning -------------------------------------------------------------

    def plan(
        self,
        jobs: Iterable[PlannedJob],
        run_id: str,
        *,
        max_attempts: int,
        recreate_expired: bool = False,
        file_intact: Callable[[JobRow], bool] = lambda row: True,
    ) -> None:
        """Record a run's jobs in batches: insert new ones, resume known ones.

        A job already journalled under the same key is resumed by
        `_schedule.on_resume` (requeue, re-poll or keep); under a different key
        (the manifest changed it) it starts over unless its task is still in
        flight. Every planned job is marked with `run_id`.
        """
        batch: list[PlannedJob] = []
        for job in jobs:
            batch.append(job)
            if len(batch) >= BATCH:
                self._plan_batch(batch, run_id, max_attempts, recreate_expired, file_intact)
                batch = []
        if batch:
            self._plan_batch(batch, run_id, max_attempts, recreate_expired, file_intact)

    def _plan_batch(
        self,
        batch: list[PlannedJob],
        run_id: str,
        max_attempts: int,
        recreate_expired: bool,
        file_intact: Callable[[JobRow], bool],
    ) -> None:
        marks = ",".join("?" * len(batch))
        existing = {
            r["name"]: _row(r)
            for r in self._conn.execute(f"SELECT * FROM jobs WHERE name IN ({marks})", [j.name for j in batch])
        }
        now = self._clock()
        decisions: list[tuple[JobRow, Resume]] = []
        for job in batch:
            row = existing.get(job.name)
            if row is not None and row.key == job.key:
                decision = on_resume(
                    row.state, attempts=row.attempts, max_attempts=max_attempts, retryable=row.retryable,
                    error_code=row.error_code, has_task=row.task_id is not None,
                    file_intact=row.state is not State.DONE or file_intact(row), recreate_expired=recreate_expired,
                )
                decisions.append((row, decision))
        with self._conn:
            self._conn.execute("BEGIN")
            seq = self._next_seq()
            for job in batch:
                row = existing.get(job.name)
                if row is None or (row.key != job.key and row.state not in IN_FLIGHT):
                    self._conn.execute("DELETE FROM jobs WHERE name = ?", (job.name,))
                    self._conn.execute(
                        "INSERT INTO jobs (name, seq, plan, key, model, body, state, updated_at)"
                        " VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (job.name, seq, run_id, job.key, job.model, json.dumps(job.body), State.NEW, now),
                    )
                    self._history(job.name, now, State.NEW, None, {"planned": run_id} if row is None else
                                  {"planned": run_id, "replaced_key": row.key})
                    seq += 1
                else:
                    self._conn.execute("UPDATE jobs SET plan = ? WHERE name = ?", (run_id, job.name))
            for row, decision in decisions:
                if decision is Resume.REQUEUE:
                    self._conn.execute(
                        "UPDATE jobs SET state = ?, seq = ?, task_id = NULL, task_status = NULL, video_url = NULL,"
                        " error_code = NULL, error_message = NULL, retryable = 0, updated_at = ? WHERE name = ?",
                        (State.NEW, seq, now, row.name),
                    )
                    seq += 1
                    self._history(row.name, now, State.NEW, None, {"resume": "requeue", "was": str(row.state)})
                elif decision is Resume.REPOLL:
                    self._conn.execute(
                        "UPDATE jobs SET state = ?, error_code = NULL, error_message = NULL, retryable = 0,"
                        " updated_at = ? WHERE name = ?",
                        (State.RUNNING, now, row.name),
                    )
                    self._history(row.name, now, State.RUNNING, row.task_id, {"resume": "repoll", "was": str(row.state)})

    def _next_seq(self) -> int:
        return int(self._conn.execute("SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs").fetchone()[0])

    # --- state changes --------------------------------------------------------

    def transition(self, name: str, state: State, *, detail: Mapping[str, Any] | None = None, **columns: Any) -> None:
        """Move job `name` to `state`, setting `columns`, and append a history row; one transaction.

        A job entering NEW again goes to the back of the submit queue.
        """
        unknown = set(columns) - _COLUMNS
        if unknown:
            raise ValueError(f"unknown journal columns: {sorted(unknown)}")
        now = self._clock()
        values = {k: (json.dumps(v) if k in _JSON_COLUMNS and v is not None else v) for k, v in columns.items()}
        if "retryable" in values:
            values["retryable"] = int(bool(values["retryable"]))
        sets = ", ".join(f"{k} = ?" for k in values)
        with self._conn:
            self._conn.execute("BEGIN")
            extra = ", seq = (SELECT COALESCE(MAX(seq), 0) + 1 FROM jobs)" if state is State.NEW else ""
            cur = self._conn.execute(
                f"UPDATE jobs SET state = ?, updated_at = ?{', ' + sets if sets else ''}{extra} WHERE name = ?",
                (state, now, *values.values(), name),
            )
            if cur.rowcount != 1:
                raise KeyError(name)
            task_id = columns.get("task_id")
            if task_id:
                self._conn.execute(
                    "INSERT OR IGNORE INTO tasks (task_id, job, adopted_at) VALUES (?, ?, ?)", (task_id, name, now)
                )
            if task_id is None:
                task_id = self._conn.execute("SELECT task_id FROM jobs WHERE name = ?", (name,)).fetchone()[0]
            self._history(name, now, state, task_id, dict(detail) if detail else None)

    def _history(self, name: str, at: float, state: str, task_id: str | None, detail: dict[str, Any] | None) -> None:
        self._conn.execute(
            "INSERT INTO history (job, at, state, task_id, detail) VALUES (?, ?, ?, ?, ?)",
            (name, at, str(state), task_id, json.dumps(detail) if detail else None),
        )

    # --- reading --------------------------------------------------------------

    def get(self, name: str) -> JobRow | None:
        r = self._conn.execute("SELECT * FROM jobs WHERE name = ?", (name,)).fetchone()
        return _row(r) if r else None

    def next_new(self, plan: str, after_seq: int, limit: int = BATCH) -> list[JobRow]:
        """Up to `limit` jobs of `plan` waiting to be sent, in queue order after `after_seq`."""
        rows = self._conn.execute(
            "SELECT * FROM jobs WHERE state = ? AND seq > ? AND plan = ? ORDER BY seq LIMIT ?",
            (State.NEW, after_seq, plan, limit),
        )
        return [_row(r) for r in rows]

    def in_states(self, states: Iterable[State], *, plan: str | None = None) -> Iterator[JobRow]:
        """Every job in one of `states` (of `plan`, when given), in queue order, streamed."""
        wanted = [str(s) for s in states]
        marks = ",".join("?" * len(wanted))
        sql = f"SELECT * FROM jobs WHERE state IN ({marks})"
        params: list[Any] = list(wanted)
        if plan is not None:
            sql += " AND plan = ?"
            params.append(plan)
        for r in self._conn.execute(sql + " ORDER BY seq", params):
            yield _row(r)

    def rows(self, *, plan: str | None = None) -> Iterator[JobRow]:
        """Every job (of `plan`, when given) in queue order, streamed."""
        if plan is None:
            cur = self._conn.execute("SELECT * FROM jobs ORDER BY seq")
        else:
            cur = self._conn.execute("SELECT * FROM jobs WHERE plan = ? ORDER BY seq", (plan,))
        for r in cur:
            yield _row(r)

    def counts(self, *, plan: str | None = None) -> dict[str, int]:
        """Number of jobs per state (of `plan`, when given)."""
        if plan is None:
            cur = self._conn.execute("SELECT state, COUNT(*) FROM jobs GROUP BY state")
        else:
            cur = self._conn.execute("SELECT state, COUNT(*) FROM jobs WHERE plan = ? GROUP BY state", (plan,))
        return {state: n for state, n in cur}

    def history(self, name: str) -> list[HistoryEntry]:
        cur = self._conn.execute("SELECT at, state, task_id, detail FROM history WHERE job = ? ORDER BY rowid", (name,))
        return [HistoryEntry(at, state, task_id, json.loads(detail) if detail else None) for at, state, task_id, detail in cur]

    def known_task_ids(self) -> set[str]:
        """Every task id this campaign ever recorded (never adopted again by reconciliation)."""
        return {r[0] for r in self._conn.execute("SELECT task_id FROM tasks")}

    def known_among(self, task_ids: Iterable[str]) -> set[str]:
        """Those of `task_ids` this campaign has already recorded."""
        ids = list(task_ids)
        found: set[str] = set()
        for i in range(0, len(ids), BATCH):
            chunk = ids[i : i + BATCH]
            marks = ",".join("?" * len(chunk))
            found.update(r[0] for r in self._conn.execute(f"SELECT task_id FROM tasks WHERE task_id IN ({marks})", chunk))
        return found

    # --- uploads (the media uploader's cache) ---------------------------------

    def find_upload(self, content_hash: str, model: str, now: float) -> str | None:
        """The oss:// URL of a file already uploaded for `model`, if it is still valid at `now`."""
        r = self._conn.execute(
            "SELECT url FROM uploads WHERE content_hash = ? AND model = ? AND expires_at > ?",
            (content_hash, model, now),
        ).fetchone()
        return r[0] if r else None

    def record_upload(self, content_hash: str, model: str, url: str, expires_at: float) -> None:
        with self._conn:
            self._conn.execute(
                "INSERT OR REPLACE INTO uploads (content_hash, model, url, expires_at) VALUES (?, ?, ?, ?)",
                (content_hash, model, url, expires_at),
            )

    # --- runs -----------------------------------------------------------------

    def start_run(self, run_id: str) -> None:
        with self._conn:
            self._conn.execute("INSERT INTO runs (run_id, started_at) VALUES (?, ?)", (run_id, self._clock()))

    def finish_run(self, run_id: str, exit_code: int, summary: Mapping[str, Any]) -> None:
        with self._conn:
            self._conn.execute(
                "UPDATE runs SET ended_at = ?, exit_code = ?, summary = ? WHERE run_id = ?",
                (self._clock(), exit_code, json.dumps(summary), run_id),
            )

    def last_run(self) -> dict[str, Any] | None:
        r = self._conn.execute("SELECT * FROM runs ORDER BY started_at DESC LIMIT 1").fetchone()
        return dict(r) if r else None


class CampaignLock:
    """An exclusive, non-blocking flock on `<output_dir>/.lock`, held for a whole run.

    The kernel drops it when the process dies (even by SIGKILL), so a crash
    never leaves a stale lock behind. Raises LockHeld when another run has it.
    """

    def __init__(self, output_dir: Path) -> None:
        self.path = Path(output_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 64).decode(errors="replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise LockHeld(
                f"another run of this campaign is in progress{who}: {self.path.parent} is locked; "
                "wait for it to finish, or use `python -m runner status` to watch it"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> CampaignLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
