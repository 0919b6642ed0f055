"""A DashScope-compatible simulator for tests, demos and benchmarks.

    from runner._sim import Simulator, SimConfig, Faults
    async with Simulator(SimConfig(api_key="sk-test", time_scale=600)) as sim:
        ...  # point a client at sim.base_url

See `_server` for the routes, `_faults` for what can go wrong on purpose and
`_clock` for simulated versus real time.
"""

from ._clock import SimClock
from ._faults import ACCOUNT_ERRORS, FAILURES, Faults
from ._server import RequestRecord, SimConfig, Simulator, StoredObject
from ._tasks import Task

__all__ = [
    "ACCOUNT_ERRORS",
    "FAILURES",
    "Faults",
    "RequestRecord",
    "SimClock",
    "SimConfig",
    "Simulator",
    "StoredObject",
    "Task",
]
