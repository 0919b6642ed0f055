"""Per-job run logs: ``logs/<job>.jsonl``, one JSON object a line, appended and flushed.

Each line is either an API exchange (``"kind": "exchange"``, the fields of
`runner._client.Exchange`) or an engine event (``"kind": "event"``, whatever the
engine passes). Lines carry ``"ts"``, an ISO-8601 UTC time, and ``"job"``.

The client already redacts its exchanges; this writer scrubs the API key out of
every line once more before it reaches the disk, so a mistake elsewhere cannot
leak it into a file.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections import OrderedDict
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from ._client import REDACTED, Exchange

__all__ = ["RunLog", "log_file_name"]

_SAFE = re.compile(r"[^A-Za-z0-9._-]+")
#: open log files kept at once; thousands of jobs must not exhaust descriptors
_MAX_OPEN = 32


def log_file_name(job_name: str) -> str:
    """The log file name for a job: the name itself when file-safe, else a safe form plus a hash.

    The hash keeps two names that sanitise alike (``a/b``, ``a_b``) apart.
    """
    safe = _SAFE.sub("_", job_name).strip(".") or "job"
    if safe == job_name and len(safe) <= 120:
        return f"{safe}.jsonl"
    digest = hashlib.sha1(job_name.encode("utf-8")).hexdigest()[:8]
    return f"{safe[:100]}-{digest}.jsonl"


class RunLog:
    """Writes every job's exchanges and events to ``<logs_dir>/<job>.jsonl``."""

    def __init__(self, logs_dir: Path, api_key: str | None) -> None:
        self._dir = Path(logs_dir)
        self._secrets = _secret_forms(api_key)
        self._files: OrderedDict[str, IO[str]] = OrderedDict()

    @property
    def logs_dir(self) -> Path:
        return self._dir

    def path_for(self, job_name: str) -> Path:
        """Where `job_name`'s log is written."""
        return self._dir / log_file_name(job_name)

    def exchange(self, job_name: str, ex: Exchange) -> None:
        """Append one API exchange to the job's log."""
        self._write(job_name, {"kind": "exchange", **_exchange_fields(ex)})

    def event(self, job_name: str, **fields: Any) -> None:
        """Append one engine event (``event="submitted", task_id=...``) to the job's log."""
        self._write(job_name, {"kind": "event", **fields})

    def close(self) -> None:
        """Close every open log file; later writes reopen them in append mode."""
        while self._files:
            _, handle = self._files.popitem(last=False)
            handle.close()

    def __enter__(self) -> RunLog:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, job_name: str, record: dict[str, Any]) -> None:
        line = json.dumps(
            {"ts": datetime.now(timezone.utc).isoformat(timespec="milliseconds"),
             "job": job_name, **record},
            ensure_ascii=False,
            default=str,
        )
        for secret in self._secrets:
            line = line.replace(secret, REDACTED)
        handle = self._handle(job_name)
        handle.write(line + "\n")
        handle.flush()

    def _handle(self, job_name: str) -> IO[str]:
        handle = self._files.get(job_name)
        if handle is not None:
            self._files.move_to_end(job_name)
            return handle
        self._dir.mkdir(parents=True, exist_ok=True)
        handle = open(self.path_for(job_name), "a", encoding="utf-8")  # noqa: SIM115
        self._files[job_name] = handle
        if len(self._files) > _MAX_OPEN:
            _, oldest = self._files.popitem(last=False)
            oldest.close()
        return handle


def _exchange_fields(ex: Exchange) -> dict[str, Any]:
    fields = dataclasses.asdict(ex)
    fields["at"] = datetime.fromtimestamp(ex.at, timezone.utc).isoformat(timespec="milliseconds")
    fields["elapsed"] = round(ex.elapsed, 4)
    return fields


def _secret_forms(api_key: str | None) -> tuple[str, ...]:
    """The key as it may appear in a JSON line: raw and JSON-escaped."""
    if not api_key:
        return ()
    escaped = json.dumps(api_key, ensure_ascii=False)[1:-1]
    return tuple(dict.fromkeys((api_key, escaped)))
