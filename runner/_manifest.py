"""Loading a manifest: YAML (and CSV/JSONL rows) in, validated `Job`s out, or every issue at once.

    m = load_manifest("jobs/campaign.yaml")      # raises ManifestError(issues)
    for job in m.jobs: job.name, job.model, job.fields, job.body, job.key, ...

Steps, all pure but for reading the manifest, its row files and (with
`check_media`) its local media:

1. read and compose the YAML safely, keeping every value's line and column;
2. check the manifest's shape against `schemas/manifest.json`;
3. expand: defaults under each job, matrices multiplied out, rows read;
4. check each job: a safe, unique name, a known model, the model's schema
   (every error, not the first), local media present and within limits.

Every problem becomes an `Issue` with file, line, column, job and a plain
sentence; `ManifestError.issues` lists them in file order.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, ValidationError

from . import _preflight
from ._errors import ManifestError
from ._expand import RawJob, expand_matrix, merge
from ._jobcheck import checker
from ._manifest_rows import ROW_FORMATS, Row, read_csv, read_jsonl
from ._manifest_yaml import Issue, Pos, Source, Where, compose
from ._models import (
    LIST_MEDIA,
    MEDIA_FIELDS,
    MODEL_IDS,
    MODEL_TABLE,
    SCHEMA_DIR,
    UnknownModel,
    all_known_fields,
    build_body,
    defaults,
    explain,
    known_fields,
    media_limits,
    media_scheme,
    path_text,
)

__all__ = ["Issue", "Job", "Limits", "Manifest", "load_manifest", "name_problem", "REGIONS"]

#: the largest manifest read, in bytes
MAX_MANIFEST_BYTES = 50 * 1024 * 1024
#: the largest CSV/JSONL file of jobs read, in bytes
MAX_ROWS_BYTES = 200 * 1024 * 1024
#: the longest campaign or job name
MAX_NAME_LENGTH = 100

REGIONS: dict[str, str] = {
    "beijing": "https://dashscope.aliyuncs.com/api/v1",
    "singapore": "https://dashscope-intl.aliyuncs.com/api/v1",
}

_SAFE_NAME = re.compile(r"[A-Za-z0-9._-]+")
_RESERVED = re.compile(r"(?i)^(con|prn|aux|nul|com[0-9]|lpt[0-9])(\..*)?$")


@dataclass(frozen=True, slots=True)
class Limits:
    """How hard the runner may drive the account (`limits:` in the manifest)."""

    #: task creations per second
    submit_rps: float = 5.0
    #: task queries per second (the account's default query quota is 20)
    query_rps: float = 20.0
    #: most tasks created and not yet finished at once
    max_in_flight: int = 50
    #: seconds between two queries of the same task
    poll_interval: float = 15.0
    #: tries per job before it is reported failed
    max_attempts: int = 3


@dataclass(frozen=True, slots=True)
class Job:
    """One validated video job."""

    name: str
    model: str
    #: the friendly fields, `model` included, `name` not, media as written
    fields: dict[str, Any]
    #: field path ("first_frame", "reference_images[1]") -> absolute path, for local media
    local_media: dict[str, Path]
    #: stable identity: campaign, name and normalised request body
    key: str
    #: the line the job starts on, in `source`
    line: int
    #: output seconds billed, or None when it depends on a file not read (a remote video)
    billable_seconds: int | None
    #: the file the job was written in (the manifest, or a CSV/JSONL file)
    source: str = ""

    @property
    def body(self) -> dict[str, Any]:
        """The create-task body, schema defaults filled in, media as written."""
        return build_body(self.fields)


@dataclass(frozen=True, slots=True)
class Manifest:
    """A loaded, valid manifest."""

    path: Path
    campaign: str
    #: where videos, logs and the journal go (absolute)
    output_dir: Path
    #: the API base URL, without a trailing slash
    base_url: str
    limits: Limits
    jobs: list[Job]

    def billable_seconds(self) -> tuple[int, int]:
        """(known billable seconds, number of jobs whose seconds are unknown)."""
        total = unknown = 0
        for job in self.jobs:
            if job.billable_seconds is None:
                unknown += 1
            else:
                total += job.billable_seconds
        return total, unknown


# --- names -----------------------------------------------------------------

def name_problem(name: str) -> str | None:
    """Why `name` is not a safe file name, or None when it is."""
    if not name:
        return "is empty"
    if len(name) > MAX_NAME_LENGTH:
        return f"is {len(name)} characters long, more than {MAX_NAME_LENGTH}"
    if _SAFE_NAME.fullmatch(name) is None:
        if "/" in name or "\\" in name:
            return "contains a path separator"
        if any(ord(c) < 32 or ord(c) == 127 for c in name):
            return "contains a control character"
        bad = "".join(dict.fromkeys(c for c in name if not _SAFE_NAME.fullmatch(c)))
        return f"contains {bad!r}; use letters, digits, '.', '_' and '-'"
    if name.startswith((".", "-")):
        return f"starts with '{name[0]}'"
    if ".." in name:
        return "contains '..'"
    if name.endswith("."):
        return "ends with '.'"
    if _RESERVED.match(name):
        return "is a reserved device name on Windows"
    return None


# --- the manifest's own shape -------------------------------------------------

@cache
def _manifest_validator() -> Draft202012Validator:
    with open(SCHEMA_DIR / "manifest.json", encoding="utf-8") as fh:
        return Draft202012Validator(json.load(fh))


def _describe_types(types: Sequence[str]) -> str:
    names = {"string": "text", "integer": "a whole number", "number": "a number", "boolean": "true/false",
             "array": "a list", "object": "a mapping", "null": "null"}
    words = [names.get(t, t) for t in dict.fromkeys("number" if t == "integer" and "number" in types else t for t in types)]
    return ", ".join(words[:-1]) + " or " + words[-1] if len(words) > 1 else words[0]


def _explain_manifest(error: ValidationError) -> list[tuple[list[str | int], str]]:
    """(path parts, sentence) for an error in the manifest's own shape."""
    parts: list[str | int] = list(error.absolute_path)
    where_text = path_text(parts)
    what = where_text or "the manifest"
    kind, value, instance = error.validator, error.validator_value, error.instance
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = list(error.schema.get("properties", {}))
        found = []
        for extra in sorted(set(instance) - set(known)):
            if not parts and extra.startswith("x-"):
                continue
            hint = difflib.get_close_matches(extra, known, n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
            place = f" in {where_text}" if where_text else ""
            found.append(([*parts, extra], f"unknown key '{extra}'{place}{suffix}"))
        return found
    if kind == "required":
        missing = error.message.split("'")[1]
        return [([*parts, missing], f"{missing} is required in {what}")]
    if kind == "type":
        types = value if isinstance(value, list) else [value]
        return [(parts, f"{what} must be {_describe_types(types)}, not {_json_kind(instance)}")]
    if kind == "exclusiveMinimum":
        return [(parts, f"{what} {instance!r} must be more than {value}")]
    if kind == "pattern" and "propertyNames" in error.absolute_schema_path:
        return [(
            [*parts, instance],
            f"matrix variable {instance!r} must be an identifier (letters, digits and '_', not starting with a digit)",
        )]
    if kind == "pattern" and parts == ["base_url"]:
        return [(parts, f"base_url {instance!r} must be an http or https URL")]
    if kind == "anyOf" and parts == ["jobs_from"]:
        return [(parts, "jobs_from must be a file name or a list of file names")]
    if kind == "minProperties":
        return [(parts, f"{what} must not be empty")]
    return [(parts, explain(error, "the manifest")[1])]


def _json_kind(value: object) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null"


# --- reading files -----------------------------------------------------------

def _read_text(path: Path, source: Source, limit: int, what: str, where: Where | None) -> tuple[str | None, Issue | None]:
    """The text of a UTF-8 file, or the issue that stops it being read."""
    at = where or Where(source, 0)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None, Issue.at(at, f"{what} '{source.display}' does not exist")
    except OSError as exc:
        return None, Issue.at(at, f"{what} '{source.display}' cannot be read: {exc.strerror}")
    except ValueError:  # the OS takes no file name with a NUL byte
        return None, Issue.at(at, f"{what} {source.display!r} is not a valid file name")
    if not path.is_file():
        return None, Issue.at(at, f"{what} '{source.display}' is not a file")
    if size > limit:
        return None, Issue.at(
            at, f"{what} is {size / 2**20:.1f} MB, above the limit of {limit // 2**20} MB; split it into several files"
        )
    try:
        data = path.read_bytes()
    except OSError as exc:
        return None, Issue.at(at, f"{what} '{source.display}' cannot be read: {exc.strerror}")
    try:
        return data.decode("utf-8-sig"), None
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        return None, Issue.at(Where(source, line), f"{what} is not UTF-8 text (byte {exc.start} cannot be decoded)")


@cache
def _video_seconds(path: Path) -> float | None:
    """The duration of a local video, or None when it cannot be read (pre-flight says why)."""
    import av  # noqa: PLC0415 - only needed for video-edit jobs with a local video

    try:
        with av.open(str(path)) as container:
            if container.duration is not None:
                return container.duration / av.time_base
            stream = container.streams.video[0]
            if stream.duration is not None and stream.time_base is not None:
                return float(stream.duration * stream.time_base)
    except (av.FFmpegError, OSError, IndexError, ValueError):
        return None
    return None


# --- the loader --------------------------------------------------------------

#: keys a defaults mapping cannot hold: each job has its own
_NOT_DEFAULTS = ("name", "matrix", "from")

#: stands for "the file does not exist" among pre-flight sentences
_MISSING = "<missing>"


def _has_media(fields: Mapping[str, Any]) -> bool:
    return any(field in fields for field in MEDIA_FIELDS)


class _Loader:
    """One load of one manifest: its sources, the issues found so far, and caches."""

    def __init__(self, path: Path, check_media: bool) -> None:
        self.path = path
        self.check_media = check_media
        self.issues: list[Issue] = []
        self.sources = 0
        self.resolved: dict[tuple[Path, str], Path] = {}
        self.media_checked: dict[tuple[Path, str, str], list[str]] = {}

    def source(self, display: str, folder: Path) -> Source:
        self.sources += 1
        return Source(display, folder, self.sources - 1)

    def fail_if_issues(self) -> None:
        if self.issues:
            raise ManifestError(_ordered(self.issues))

    # -- top level --

    def load(self) -> Manifest:
        display = os.fspath(self.path)
        main = self.source(display, self.path.resolve().parent)
        text, issue = _read_text(self.path, main, MAX_MANIFEST_BYTES, "the manifest", None)
        if issue is not None:
            raise ManifestError([issue])
        assert text is not None
        doc, pos, issues = compose(text, main)
        self.issues.extend(issues)
        if doc is None and not issues:
            self.issues.append(Issue.at(Where(main, 1), "the manifest is empty: it needs at least a campaign and jobs"))
        elif doc is not None and not isinstance(doc, dict):
            self.issues.append(
                Issue.at(pos.where, f"the manifest must be a mapping (campaign:, jobs:, ...), not {_json_kind(doc)}")
            )
        if not isinstance(doc, dict):
            self.fail_if_issues()
            raise AssertionError("unreachable")  # pragma: no cover
        doc = {k: v for k, v in doc.items() if not k.startswith("x-")}

        bad_keys: set[str] = set()
        bad_entries: set[int] = set()
        for error in _manifest_validator().iter_errors(doc):
            for parts, sentence in _explain_manifest(error):
                label = None
                if len(parts) >= 2 and parts[0] == "jobs" and isinstance(parts[1], int):
                    bad_entries.add(parts[1])
                    entry = doc["jobs"][parts[1]]
                    if isinstance(entry, dict) and isinstance(entry.get("name"), str):
                        label = entry["name"]
                elif parts:
                    bad_keys.add(str(parts[0]))
                self.issues.append(Issue.at(pos.locate(parts), sentence, job=label, path=path_text(parts)))

        campaign = doc.get("campaign")
        if isinstance(campaign, str) and "campaign" not in bad_keys:
            problem = name_problem(campaign)
            if problem:
                self.issues.append(Issue.at(pos.locate(["campaign"]), f"campaign name {campaign!r} {problem}"))
        base_url = self.base_url(doc, pos)
        limits = Limits(**doc["limits"]) if isinstance(doc.get("limits"), dict) and "limits" not in bad_keys else Limits()
        given_dir = doc.get("output_dir")
        if not isinstance(given_dir, str) or not given_dir:  # absent, or not text (the schema reported it)
            given_dir = os.path.join("output", str(campaign))
        output_dir = Path(os.path.abspath(given_dir))

        given_defaults = doc.get("defaults")
        top_defaults_pos = pos.child("defaults") or Pos(pos.where, {})
        top_defaults = self.usable_defaults(given_defaults if isinstance(given_defaults, dict) else {}, top_defaults_pos)

        if "jobs" not in doc and "jobs_from" not in doc:
            self.issues.append(Issue.at(pos.where, "the manifest has no jobs: add a jobs list or jobs_from"))
        raw_jobs = self.raw_jobs(doc, pos, main, top_defaults, top_defaults_pos, bad_keys, bad_entries)
        jobs = self.check_jobs(raw_jobs, str(campaign))
        self.fail_if_issues()
        return Manifest(self.path, str(campaign), output_dir, base_url, limits, jobs)

    def base_url(self, doc: Mapping[str, Any], pos: Pos) -> str:
        if "region" in doc and "base_url" in doc:
            self.issues.append(Issue.at(pos.locate(["base_url"]), "give region or base_url, not both"))
        url = doc.get("base_url")
        if isinstance(url, str):
            return url.rstrip("/")
        region = doc.get("region", "beijing")
        return REGIONS.get(region, REGIONS["beijing"]) if isinstance(region, str) else REGIONS["beijing"]

    def usable_defaults(self, values: Mapping[str, Any], pos: Pos) -> dict[str, Any]:
        """`values` without the keys that cannot be defaults, each of which is reported."""
        for key in _NOT_DEFAULTS:
            if key in values:
                self.issues.append(
                    Issue.at(pos.locate([key]), f"'{key}' cannot be a default: give each job its own", path=f"defaults.{key}")
                )
        return {k: v for k, v in values.items() if k not in _NOT_DEFAULTS}

    # -- expansion --

    def raw_jobs(
        self,
        doc: Mapping[str, Any],
        pos: Pos,
        main: Source,
        top: Mapping[str, Any],
        top_defaults_pos: Pos,
        bad_keys: set[str],
        bad_entries: set[int],
    ) -> Iterator[RawJob]:
        listed = doc.get("jobs")
        entries: list[Any] = listed if isinstance(listed, list) and "jobs" not in bad_keys else []
        jobs_pos = pos.child("jobs") or Pos(pos.where, [])
        for index, entry in enumerate(entries):
            if index in bad_entries or not isinstance(entry, dict):
                continue
            entry_pos = jobs_pos.child(index) or Pos(jobs_pos.where)
            if "from" in entry:
                yield from self.from_entry(entry, entry_pos, main, top, top_defaults_pos)
                continue
            label = entry["name"] if isinstance(entry.get("name"), str) else f"#{index + 1}"
            own = {k: v for k, v in entry.items() if k != "matrix"}
            if "defaults" in own:
                self.issues.append(
                    Issue.at(entry_pos.locate(["defaults"]), "a job cannot have defaults (only a 'from' entry can)", job=label)
                )
                continue
            if "matrix" in entry:
                yield from expand_matrix(
                    entry.get("name"), own, entry["matrix"], entry_pos, entry_pos.child("matrix") or entry_pos,
                    [top], (top_defaults_pos,), self.issues, label,
                )
            else:
                yield merge(entry.get("name"), own, entry_pos.where, (entry_pos, top_defaults_pos), top)
        if "jobs_from" in doc and "jobs_from" not in bad_keys:
            refs = doc["jobs_from"] if isinstance(doc["jobs_from"], list) else [doc["jobs_from"]]
            from_pos = pos.child("jobs_from") or pos
            for index, ref in enumerate(refs):
                ref_pos = from_pos.child(index) or from_pos
                yield from self.rows(ref, ref_pos.where, main, [top], (top_defaults_pos,))

    def from_entry(
        self, entry: Mapping[str, Any], entry_pos: Pos, main: Source, top: Mapping[str, Any], top_pos: Pos
    ) -> Iterator[RawJob]:
        extras = [k for k in entry if k not in ("from", "defaults")]
        for key in extras:
            self.issues.append(
                Issue.at(entry_pos.locate([key]), f"a 'from' entry takes only from and defaults; put '{key}' under its defaults")
            )
        if extras:
            return
        own_pos = entry_pos.child("defaults") or Pos(entry_pos.where, {})
        own_defaults = self.usable_defaults(entry.get("defaults") or {}, own_pos)
        yield from self.rows(entry["from"], entry_pos.locate(["from"]), main, [own_defaults, top], (own_pos, top_pos))

    def rows(
        self, ref: str, where: Where, main: Source, defaults_chain: list[Mapping[str, Any]], layers: tuple[Pos, ...]
    ) -> Iterator[RawJob]:
        """Jobs from a CSV/JSONL file named in the manifest at `where`."""
        if media_scheme(ref) is not None:
            self.issues.append(Issue.at(where, f"jobs file {ref!r} must be a local file, not a URL"))
            return
        kind = ROW_FORMATS.get(Path(ref).suffix.lower())
        if kind is None:
            self.issues.append(Issue.at(where, f"jobs file {ref!r} must end in .csv or .jsonl"))
            return
        path = Path(os.path.normpath(main.folder / ref))
        display = os.path.normpath(os.path.join(os.path.dirname(main.display), ref))
        source = self.source(display, path.parent)
        text, issue = _read_text(path, source, MAX_ROWS_BYTES, "jobs file", where)
        if issue is not None:
            self.issues.append(issue)
            return
        assert text is not None
        model_hint = next((d["model"] for d in defaults_chain if "model" in d), None)
        read: Iterator[Row] = (
            read_csv(text, source, model_hint, self.issues) if kind == "csv" else read_jsonl(text, source, self.issues)
        )
        for row in read:
            yield merge(row.fields.get("name"), row.fields, row.pos.where, (row.pos, *layers), *defaults_chain)

    # -- per job --

    def check_jobs(self, raw_jobs: Iterator[RawJob], campaign: str) -> list[Job]:
        jobs: list[Job] = []
        seen: dict[str, Where] = {}
        for raw in raw_jobs:
            job = self.check_job(raw, campaign, seen)
            if job is not None and not self.issues:
                jobs.append(job)
        return jobs

    def check_job(self, raw: RawJob, campaign: str, seen: dict[str, Where]) -> Job | None:
        fields = raw.fields
        model = fields.get("model")
        name = raw.name
        before = len(self.issues)
        label = name if isinstance(name, str) else None
        model_label = model if isinstance(model, str) else None

        def issue(where: Where, message: str, path: str = "") -> None:
            self.issues.append(Issue.at(where, message, job=label, model=model_label, path=path))

        if name is None:
            issue(raw.where, "the job has no name; every job needs a unique name")
        elif not isinstance(name, str):
            issue(raw.locate(["name"]), f"name must be text, not {_json_kind(name)}", "name")
        elif name in seen:
            first = seen[name]
            issue(raw.locate(["name"]), f"duplicate job name {name!r} (first used at {first.source.display}:{first.line})", "name")
        else:
            problem = name_problem(name)
            if problem:
                issue(raw.locate(["name"]), f"job name {name!r} {problem}", "name")
            seen[name] = raw.where

        if model is None:
            issue(raw.where, f"model is missing: give it in the job or in defaults (one of {', '.join(MODEL_IDS)})", "model")
            return None
        if model not in MODEL_IDS:
            issue(raw.locate(["model"]), str(UnknownModel(model)), "model")
            return None
        if raw.from_defaults:
            _drop_unsupported_defaults(fields, raw.from_defaults, model)
        for parts, sentence in checker(model).problems(fields):
            issue(raw.locate(parts), sentence, path_text(parts))

        local_media = self.media(raw, model, issue) if _has_media(fields) else {}
        if self.issues:
            return None  # a manifest with issues returns no jobs: skip building them
        assert isinstance(name, str) and local_media is not None and len(self.issues) == before
        body = build_body(fields)
        identity = json.dumps([campaign, name, body], sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        return Job(
            name=name,
            model=model,
            fields=fields,
            local_media=local_media,
            key=hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32],
            line=raw.where.line,
            billable_seconds=self.billable_seconds(model, fields, local_media),
            source=raw.where.source.display,
        )

    def media(self, raw: RawJob, model: str, issue: Any) -> dict[str, Path] | None:
        """Local media of a job as absolute paths; None when one is missing or unfit."""
        found: dict[str, Path] = {}
        ok = True
        fields = raw.fields
        for field in MEDIA_FIELDS:
            value = fields.get(field)
            if value is None:
                continue
            refs: list[tuple[str, Any]]
            if field in LIST_MEDIA:
                refs = [(f"{field}[{i}]", v) for i, v in enumerate(value)] if isinstance(value, list) else []
            else:
                refs = [(field, value)]
            folder: Path | None = None
            for index, (path_text, ref) in enumerate(refs):
                if not isinstance(ref, str) or not ref or media_scheme(ref) is not None:
                    continue  # a URL, or a value the schema already reported
                if folder is None:
                    folder = raw.locate([field]).source.folder  # relative to the file the field is written in
                path = self.resolved.get((folder, ref))
                if path is None:
                    path = self.resolved[(folder, ref)] = Path(os.path.normpath(folder / ref))
                found[path_text] = path
                if not self.check_media:
                    continue
                problems = self.media_problems(path, model, field)
                if problems:
                    where = raw.locate([field, index] if field in LIST_MEDIA else [field])
                    for problem in problems:
                        if problem is _MISSING:
                            issue(where, f"{path_text} file {ref!r} does not exist (looked for {path})", path_text)
                        else:
                            issue(where, f"{path_text} {ref!r}: {problem}", path_text)
                    ok = False
        return found if ok else None

    def media_problems(self, path: Path, model: str, field: str) -> list[str]:
        """Why a local file does not fit `field` of `model` (`_MISSING` when it does not exist);
        each file is checked once per model and field."""
        cache_key = (path, model, field)
        sentences = self.media_checked.get(cache_key)
        if sentences is None:
            if not path.is_file():
                sentences = [_MISSING]
            else:
                limits = media_limits(model, field)
                sentences = _preflight.check_local_file(path, limits) if limits else []
            self.media_checked[cache_key] = sentences
        return sentences

    def billable_seconds(self, model: str, fields: Mapping[str, Any], local_media: Mapping[str, Path]) -> int | None:
        row = MODEL_TABLE[model]
        if row.duration_from == "parameter":
            duration = fields["duration"] if "duration" in fields else _default_duration(model)
            return duration if isinstance(duration, int) else None
        video = local_media.get("video")
        if video is None or not self.check_media:
            return None
        seconds = _video_seconds(video)
        return None if seconds is None else min(round(seconds), row.max_output_seconds)


def _drop_unsupported_defaults(fields: dict[str, Any], inherited: frozenset[str], model: str) -> None:
    """Defaults apply where they fit: a default another model takes (e.g. `duration` for
    video-edit) is dropped; one no model takes (a typo) stays, to be reported."""
    supported, every = _field_sets(model)
    for key in inherited:
        if key not in supported and key in every:
            del fields[key]


@cache
def _default_duration(model: str) -> Any:
    return defaults(model).get("duration")


@cache
def _field_sets(model: str) -> tuple[frozenset[str], frozenset[str]]:
    """(the fields `model` takes, the fields any model takes)."""
    return frozenset(known_fields(model)), all_known_fields()


def _ordered(issues: list[Issue]) -> list[Issue]:
    """Issues in file order, the same problem at the same place in several jobs given once."""
    merged: dict[tuple[Any, ...], Issue] = {}
    for item in issues:
        group = (item.rank, item.line, item.column, item.message, item.model, item.path)
        first = merged.get(group)
        if first is None:
            merged[group] = item
        elif item.job != first.job:
            merged[group] = Issue(
                first.file, first.line, first.column, first.message, first.job, first.model, first.path,
                first.more_jobs + 1, rank=first.rank,
            )
    return sorted(merged.values(), key=Issue.sort_key)


def load_manifest(path: str | os.PathLike[str], *, check_media: bool = True) -> Manifest:
    """Read, expand and validate a manifest.

    Local media paths are relative to the file they are written in (the
    manifest, or a CSV/JSONL file of jobs). With `check_media`, each local
    file must exist and pass the media pre-flight (each distinct file checked
    once); without it, files are not touched and video-edit jobs with a local
    video have unknown billable seconds.

    Raises ManifestError listing every issue, in file order. Never touches the network.
    """
    return _Loader(Path(path), check_media).load()
