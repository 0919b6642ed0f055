"""Command-line front door: `python -m runner [run] MANIFEST`, `validate`, `status`, `cancel`, `simulate`.

Each command lives in its own module, which provides `configure(parser)` to add
its options and `main(args) -> int` to run it. This module only dispatches and
turns an expected `RunnerError` into one line on stderr and its exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from ._errors import RunnerError

#: command name -> (module that implements it, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "run": ("runner._run_cli", "run a campaign: validate, submit, poll, download (default command)"),
    "validate": ("runner._validate_cli", "check a manifest and print the expanded plan; sends nothing"),
    "status": ("runner._run_cli", "show what the journal knows about a campaign"),
    "cancel": ("runner._run_cli", "cancel the campaign's PENDING tasks"),
    "simulate": ("runner._sim.cli", "start the built-in DashScope simulator"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m runner",
        description="Batch runner for DashScope video generation. "
        "`python -m runner MANIFEST` is short for `python -m runner run MANIFEST`.",
        epilog="exit codes: 0 all done, 1 some jobs failed, 2 invalid manifest or usage, "
        "3 interrupted, 4 another run holds the lock, 5 authentication or account error",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        command = sub.add_parser(name, help=help_text, description=help_text)
        module = importlib.import_module(module_name)
        configure = getattr(module, f"configure_{name}", None) or module.configure
        configure(command)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] not in COMMANDS and not argv[0].startswith("-"):
        argv.insert(0, "run")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    module = importlib.import_module(COMMANDS[args.command][0])
    entry = getattr(module, f"main_{args.command}", None) or module.main
    try:
        return int(entry(args))
    except RunnerError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 3
