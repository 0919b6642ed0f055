"""Shared fixtures: a running DashScope simulator, a controllable real clock, an HTTP session.

`simulator` is a started `runner._sim.Simulator` (key "sk-test", 600 simulated
seconds per real second, default quotas). Tests that need another set-up
override the `sim_config` fixture or call `start_simulator(**overrides)`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from runner._sim import SimClock, SimConfig, Simulator

TEST_KEY = "sk-test"


class ManualTime:
    """A real-time source that only moves when told to: `clock = SimClock(real=manual)`."""

    def __init__(self, start: float = 1000.0) -> None:
        self.value = start

    def __call__(self) -> float:
        return self.value

    def advance(self, seconds: float) -> None:
        self.value += seconds


@pytest.fixture
def sim_config() -> SimConfig:
    """The configuration of the `simulator` fixture; override it in a test module to change it."""
    return SimConfig(api_key=TEST_KEY, time_scale=600.0)


@pytest.fixture
async def simulator(sim_config: SimConfig) -> AsyncIterator[Simulator]:
    """A started simulator built from `sim_config`."""
    async with Simulator(sim_config) as sim:
        yield sim


@pytest.fixture
async def start_simulator() -> AsyncIterator[Callable[..., Awaitable[Simulator]]]:
    """`await start_simulator(clock=None, **SimConfig fields)`: more simulators, stopped at teardown."""
    started: list[Simulator] = []

    async def start(*, clock: SimClock | None = None, **overrides: object) -> Simulator:
        fields: dict[str, object] = {"api_key": TEST_KEY, "time_scale": 600.0, **overrides}
        sim = Simulator(SimConfig(**fields), clock=clock)  # type: ignore[arg-type]
        await sim.start()
        started.append(sim)
        return sim

    yield start
    for sim in started:
        await sim.stop()


@pytest.fixture
def manual_time() -> ManualTime:
    """A frozen real clock for `SimClock(real=manual_time)`; move it with `.advance(s)`."""
    return ManualTime()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    """A plain aiohttp session (no base URL, no auth header)."""
    async with aiohttp.ClientSession() as session:
        yield session
