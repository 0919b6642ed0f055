"""`python -m runner simulate`: run the DashScope simulator by hand until Ctrl-C."""

from __future__ import annotations

import argparse
import asyncio
import os

from .._errors import UsageError
from ._faults import ACCOUNT_ERRORS, Faults
from ._server import SimConfig, Simulator


def configure(parser: argparse.ArgumentParser) -> None:
    """Add the simulator's options to `parser`."""
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to bind (default: a free one)")
    parser.add_argument("--api-key", default=None,
                        help="the key clients must send (default: $DASHSCOPE_API_KEY, else sk-sim)")
    parser.add_argument("--time-scale", type=float, default=1.0,
                        help="simulated seconds per real second (default 1; 60 makes a minute a second)")
    parser.add_argument("--submit-rps", type=float, default=20.0, help="create requests per second (0: no limit)")
    parser.add_argument("--query-rps", type=float, default=20.0, help="query/list/cancel requests per second")
    parser.add_argument("--concurrency", type=int, default=5, help="tasks generating at once (0: no limit)")
    parser.add_argument("--url-ttl", type=float, default=86400.0, help="simulated seconds a video URL is valid")
    parser.add_argument("--task-ttl", type=float, default=86400.0, help="simulated seconds a task id is valid")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault decisions")
    parser.add_argument("--fail-rate", type=float, default=0.0, help="fraction of tasks that end FAILED")
    parser.add_argument("--wrong-duration-rate", type=float, default=0.0,
                        help="fraction of videos whose length differs from the request")
    parser.add_argument("--error-rate", type=float, default=0.0, help="fraction of requests answered 500")
    parser.add_argument("--drop-rate", type=float, default=0.0, help="fraction of connections closed unanswered")
    parser.add_argument("--throttle-rate", type=float, default=0.0, help="fraction of requests starting a 429 burst")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="fraction of downloads sent slowly")
    parser.add_argument("--truncate-rate", type=float, default=0.0, help="fraction of downloads cut short")
    parser.add_argument("--account-error", choices=sorted(ACCOUNT_ERRORS), default=None,
                        help="refuse creates with this account error ...")
    parser.add_argument("--account-error-after", type=int, default=0, help="... after this many accepted creates")


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """The SimConfig the command line describes. Raises ValueError for impossible values."""
    faults = Faults(
        fail_rate=args.fail_rate,
        wrong_duration_rate=args.wrong_duration_rate,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        throttle_rate=args.throttle_rate,
        slow_rate=args.slow_rate,
        truncate_rate=args.truncate_rate,
        account_error=args.account_error,
        account_error_after=args.account_error_after,
    )
    return SimConfig(
        api_key=args.api_key or os.environ.get("DASHSCOPE_API_KEY") or "sk-sim",
        time_scale=args.time_scale,
        submit_rps=args.submit_rps,
        query_rps=args.query_rps,
        concurrency=args.concurrency,
        url_ttl=args.url_ttl,
        task_ttl=args.task_ttl,
        seed=args.seed,
        faults=faults,
        host=args.host,
        port=args.port,
    )


async def serve(config: SimConfig, ready: asyncio.Event | None = None) -> None:
    """Run a simulator until cancelled, printing its base URL (never the key) once it listens.

    Raises UsageError when --host/--port cannot be bound (in use, not permitted, unknown host).
    """
    sim = Simulator(config)
    try:
        await sim.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}") from exc
    try:
        print(f"DashScope simulator listening; base URL: {sim.base_url}", flush=True)
        print("Clients authenticate with the key given by --api-key (or $DASHSCOPE_API_KEY). Ctrl-C stops.",
              flush=True)
        if ready is not None:
            ready.set()
        await asyncio.Event().wait()
    finally:
        await sim.stop()


def main(args: argparse.Namespace) -> int:
    """Serve until Ctrl-C; 0 on a clean stop, 2 for impossible options or an address that cannot be bound."""
    try:
        config = config_from_args(args)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    try:
        asyncio.run(serve(config))
    except KeyboardInterrupt:
        print("simulator stopped", flush=True)
    return 0
