"""`python -m runner validate MANIFEST`: check a manifest and print the plan; nothing is sent.

Exit 0 when the manifest is valid, 2 when it has issues (all printed, each
with its file, line and column).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections import Counter
from typing import Any, TextIO

from ._errors import ManifestError
from ._manifest import Manifest, load_manifest
from ._preflight import check_remote_media

#: issues printed before the rest are only counted
MAX_PRINTED_ISSUES = 200
#: jobs listed by default; more are summarised (use --list)
MAX_LISTED_JOBS = 20


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("manifest", help="the YAML manifest to check")
    parser.add_argument("--list", action="store_true", help="list every job, however many")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")
    parser.add_argument(
        "--no-media", dest="check_media", action="store_false", help="do not open local media files (paths are not checked)"
    )
    parser.add_argument(
        "--check-urls", action="store_true",
        help="also check remote media URLs: reachable, right type, not too big (asks the media hosts, not the API)",
    )


def plan(manifest: Manifest) -> dict[str, Any]:
    """The plan as plain data: campaign, endpoint, limits, jobs and seconds per model."""
    jobs: Counter[str] = Counter()
    seconds: Counter[str] = Counter()
    unknown: Counter[str] = Counter()
    for job in manifest.jobs:
        jobs[job.model] += 1
        if job.billable_seconds is None:
            unknown[job.model] += 1
        else:
            seconds[job.model] += job.billable_seconds
    return {
        "campaign": manifest.campaign,
        "manifest": str(manifest.path),
        "output_dir": str(manifest.output_dir),
        "base_url": manifest.base_url,
        "limits": {name: getattr(manifest.limits, name) for name in manifest.limits.__slots__},
        "jobs": len(manifest.jobs),
        "billable_seconds": sum(seconds.values()),
        "jobs_with_unknown_seconds": sum(unknown.values()),
        "models": {
            model: {"jobs": count, "billable_seconds": seconds[model], "unknown_seconds": unknown[model]}
            for model, count in sorted(jobs.items())
        },
    }


def print_plan(manifest: Manifest, out: TextIO, *, list_all: bool = False) -> None:
    """A short, human summary of the plan (one line per model; jobs listed when few)."""
    data = plan(manifest)
    limits = manifest.limits
    out.write(f"campaign {data['campaign']}: {data['jobs']} job{'' if data['jobs'] == 1 else 's'}, {_seconds(data['billable_seconds'], data['jobs_with_unknown_seconds'])}\n")
    width = max([len("model"), *(len(m) for m in data["models"])])
    out.write(f"  {'model':<{width}}  {'jobs':>8}  {'seconds':>10}\n")
    for model, row in data["models"].items():
        extra = f"  (+{row['unknown_seconds']} unknown)" if row["unknown_seconds"] else ""
        out.write(f"  {model:<{width}}  {row['jobs']:>8}  {row['billable_seconds']:>10}{extra}\n")
    out.write(f"output:  {data['output_dir']}\n")
    out.write(f"api:     {data['base_url']}\n")
    out.write(
        f"limits:  submit {limits.submit_rps:g}/s, query {limits.query_rps:g}/s, {limits.max_in_flight} in flight, "
        f"poll every {limits.poll_interval:g} s, {limits.max_attempts} attempts\n"
    )
    if list_all or len(manifest.jobs) <= MAX_LISTED_JOBS:
        name_width = max(len(job.name) for job in manifest.jobs) if manifest.jobs else 0
        model_width = max(len(job.model) for job in manifest.jobs) if manifest.jobs else 0
        for job in manifest.jobs:
            secs = "?" if job.billable_seconds is None else f"{job.billable_seconds}s"
            out.write(f"  {job.name:<{name_width}}  {job.model:<{model_width}}  {secs:>4}  {job.key[:12]}\n")
    else:
        out.write(f"  ({len(manifest.jobs)} jobs; --list prints them all)\n")


def _seconds(known: int, unknown: int) -> str:
    text = f"{known} billable seconds"
    return text + (f" (+{unknown} jobs whose length follows a remote video)" if unknown else "")


def print_issues(error: ManifestError, out: TextIO) -> None:
    """Every issue, one per line (the first MAX_PRINTED_ISSUES), then a count."""
    issues = error.issues
    for issue in issues[:MAX_PRINTED_ISSUES]:
        out.write(f"{issue}\n")
    if len(issues) > MAX_PRINTED_ISSUES:
        out.write(f"... and {len(issues) - MAX_PRINTED_ISSUES} more issues\n")
    out.write(f"{len(issues)} issue{'s' if len(issues) != 1 else ''} found; nothing was sent\n")


def remote_media_ok(manifest: Manifest) -> bool:
    """Check every remote media URL of the manifest (`--check-urls`); print the problems to stderr."""
    problems = asyncio.run(check_remote_media(manifest.jobs))
    for line in problems:
        sys.stderr.write(f"{line}\n")
    if problems:
        sys.stderr.write(f"{len(problems)} remote media problem{'s' if len(problems) != 1 else ''}; nothing was sent\n")
    return not problems


def main(args: argparse.Namespace) -> int:
    try:
        manifest = load_manifest(args.manifest, check_media=args.check_media)
    except ManifestError as exc:
        print_issues(exc, sys.stderr)
        return exc.exit_code
    if args.check_urls and not remote_media_ok(manifest):
        return ManifestError.exit_code
    if args.json:
        sys.stdout.write(json.dumps(plan(manifest), sort_keys=True) + "\n")
    else:
        print_plan(manifest, sys.stdout, list_all=args.list)
    return 0
