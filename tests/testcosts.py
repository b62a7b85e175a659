"""What each test module costs, recorded while the tests run (a pytest plugin of the test suite, loaded by
the root conftest.py).

Per module: the CPU seconds of this process and of the processes it waited for (an asv run, a
`spikeflops` command, a probe helper), the wall seconds, and the tests, added up over every test of
the module; a module- or session-scoped fixture is paid by the first test that asks for it. CPU
seconds are what a change to the suite makes slower; a co-tenant stretches the wall clock instead.

A command the tests run in the background (tests/early.py) is charged to the test that takes its
result, not to whichever test was running when it ended: `reap_background` and `charge_background`.

The costliest modules are printed at the end of a run of three or more. With
``SPIKEFLOPS_TEST_COSTS=FILE`` they are also written as a spikeflops-run results file of the
``SuiteTests`` family (the keys of its benchmark rows), so that `spikeflops gate` and `report` judge
the suite's own slowest stages like any other metric. Imports nothing heavy.
"""

from __future__ import annotations

import os
import time

import pytest

from workloads.load import SET_ASIDE_LOCK, cpu_seconds, loadavg, reap_set_aside

from benchmarks.suite_costs import COSTS_ENV_VAR, TESTS, SuiteCase

SHOWN = 5                  # modules in the end-of-run summary


class ModuleCosts:
    def __init__(self):
        self.by_module: dict[str, list[float]] = {}     # module path -> [cpu s, wall s, tests]
        self.started = time.time()
        self.load_before = loadavg()

    def add(self, module: str, cpu: float, wall: float) -> None:
        cost = self.by_module.setdefault(module, [0.0, 0.0, 0])
        cost[0] += cpu
        cost[1] += wall
        cost[2] += 1

    def costliest(self) -> list[tuple[str, float, float, int]]:
        return sorted(((m, c, w, n) for m, (c, w, n) in self.by_module.items()), key=lambda t: -t[1])

    def results(self, wall: float) -> dict:
        """A spikeflops-run results document of one SuiteTests entry per module."""
        from datetime import datetime, timezone

        from workloads.hardware import machine_facts, machine_name

        from spikeflops.results import ResultEntry, RunFile
        from spikeflops.gitrepo import git_commit

        commit, dirty = git_commit()
        entries = []
        for module, cpu, module_wall, tests in self.costliest():
            case = {**SuiteCase("tests", module=module).to_dict(), "tests": tests}
            entry = ResultEntry(TESTS.name, {"module": module}, {m.name: m.unit for m in TESTS.metrics}, case)
            entry.add("cpu_seconds", cpu)
            entry.add("wall_seconds", module_wall)
            entry.wall_s = module_wall
            entries.append(entry.to_dict())
        load = {"load_before": self.load_before, "load_after": loadavg(), "cores": os.cpu_count(), "threads": None,
                "cpu_share": None}    # a test waits on its children: its CPU over wall time is no share
        return RunFile(profile="tests", machine_name=machine_name(), machine=machine_facts(), commit=commit,
                       dirty=dirty, date=datetime.fromtimestamp(self.started, timezone.utc).isoformat(), wall_s=wall,
                       load=load, results=entries).to_dict()


_COSTS = ModuleCosts()

# CPU seconds of background commands taken (charged to the test that took the result). Reaped with
# workloads.load.reap_set_aside, which keeps them out of cpu_seconds() (of every test, and of a measurement
# running when one ends); the lock is that module's, so no reap falls between the two readings.
_background = {"taken": 0.0}


def reap_background(pid: int) -> tuple[int, float] | None:
    """``os.wait4(pid, WNOHANG)`` for a background command: (wait status, its CPU seconds with its own
    children's) once it has ended, else None. Its CPU is kept out of the test running now, and out of any
    measurement's CPU share."""
    return reap_set_aside(pid)


def charge_background(cpu_s: float) -> None:
    """Charges a background command's CPU seconds to the test running now (the one taking its result)."""
    with SET_ASIDE_LOCK:
        _background["taken"] += cpu_s


def _test_cpu_clock() -> float:
    """CPU seconds of this process and its reaped children, background commands counted where they are taken."""
    with SET_ASIDE_LOCK:
        return cpu_seconds() + _background["taken"]


def pytest_configure(config):
    path = os.environ.get(COSTS_ENV_VAR)
    if path:                               # a file that cannot be written is said before the tests, not after
        from workloads.errors import SpikeflopsError

        from spikeflops.resultsio import check_writable

        try:
            check_writable(path)
        except SpikeflopsError as exc:
            raise pytest.UsageError(f"{COSTS_ENV_VAR}: {exc}") from None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item, nextitem):
    cpu0, t0 = _test_cpu_clock(), time.perf_counter()
    yield
    _COSTS.add(item.nodeid.split("::", 1)[0], _test_cpu_clock() - cpu0, time.perf_counter() - t0)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    costliest = _COSTS.costliest()
    if len(costliest) >= 3:
        terminalreporter.section("costliest test modules (CPU s with their children, wall s)")
        for module, cpu, wall, tests in costliest[:SHOWN]:
            terminalreporter.write_line(f"{cpu:8.1f} CPU s {wall:8.1f} s  {tests:4d} tests  {module}")
    path = os.environ.get(COSTS_ENV_VAR)
    if path and costliest:
        from workloads.errors import SpikeflopsError

        from spikeflops.resultsio import write_json

        try:            # checked writable at the start; a disk that filled since is one line, not a traceback
            write_json(path, _COSTS.results(time.time() - _COSTS.started))
        except SpikeflopsError as exc:
            terminalreporter.write_line(f"{COSTS_ENV_VAR}: test costs not written: {exc}", red=True)
            return
        terminalreporter.write_line(f"test costs of {len(costliest)} modules: {path}")
