"""`python -m bench` (`make bench`): every benchmark in turn, with modest defaults; `--quick` for a smoke run.

Each benchmark prints its JSON line and table as it ends. Figures and goals
are described in each module (`bench.throughput`, `bench.overhead`,
`bench.scale`, `bench.peers`, `bench.chaos`, `bench/bench_validate.py`); run
one alone with `python -m bench.<name> --help`. Exit 1 when any of them
reported a failure (a run that did not finish, a chaos violation).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

from ._harness import ROOT

#: (name, module or script, full arguments, --quick arguments)
BENCHMARKS: list[tuple[str, list[str], list[str], list[str]]] = [
    ("validate", ["bench/bench_validate.py"], ["--jobs", "100000"], ["--jobs", "10000", "--scenario", "matrix"]),
    ("throughput", ["-m", "bench.throughput"], ["--n", "2000"], ["--n", "200"]),
    ("overhead", ["-m", "bench.overhead"], ["--n", "1000"], ["--n", "200"]),
    ("scale", ["-m", "bench.scale"], ["--n", "10000", "--n", "100000", "--run-up-to", "10000"],
     ["--n", "2000", "--run-up-to", "2000"]),
    ("peers", ["-m", "bench.peers"], ["--n", "16", "--concurrency", "8"], ["--n", "4", "--concurrency", "2"]),
    ("chaos", ["-m", "bench.chaos"], ["--n", "100", "--trials", "25"], ["--n", "30", "--trials", "6"]),
]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in under two minutes")
    parser.add_argument("--only", action="append", choices=[b[0] for b in BENCHMARKS], help="run only these")
    args = parser.parse_args(argv)
    failed = []
    for name, target, full, quick in BENCHMARKS:
        if args.only and name not in args.only:
            continue
        print(f"== {name}", flush=True)
        start = time.perf_counter()
        code = subprocess.call([sys.executable, *target, *(quick if args.quick else full)], cwd=ROOT)
        print(f"== {name}: {time.perf_counter() - start:.0f} s{'' if code == 0 else f', exit {code}'}", flush=True)
        if code:
            failed.append(name)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
