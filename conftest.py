"""Top-level pytest configuration: device option, markers, skips, and machine facts for pytest-benchmark."""

from __future__ import annotations

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("spikeflops")
    group.addoption("--device", default="cpu", help="device for workload tests and benchmarks: cpu, cuda or auto")
    group.addoption("--profile", default=None, help="run profile for benchmarks: ci, regular or full "
                                                    "(default: SPIKEFLOPS_PROFILE, else ci)")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    import os

    if config.getoption("profile"):
        os.environ["SPIKEFLOPS_PROFILE"] = config.getoption("profile")
    # Plain `pytest` runs each benchmark once as a test; timing only with --benchmark-only/--benchmark-enable.
    # (Set here, not in addopts: pytest-benchmark refuses --benchmark-only next to --benchmark-disable.)
    if config.pluginmanager.hasplugin("benchmark"):
        if not (config.getoption("benchmark_only") or config.getoption("benchmark_enable")):
            config.option.benchmark_disable = True
    # pytest-benchmark keys its storage by OS and Python only; put each machine (GPU model included) in its own folder.
    if config.pluginmanager.hasplugin("benchmark"):
        storage = config.getoption("benchmark_storage", None)
        if storage and storage.rstrip("/").endswith("results/pytest-benchmark"):
            from workloads.hardware import machine_name

            config.option.benchmark_storage = f"{storage.rstrip('/')}/{machine_name()}"
        # Saved runs name their commit (and a dirty tree), as asv's files do: NNNN_<commit>[-dirty]_<name>.json
        save = config.getoption("benchmark_save", None)
        if save:
            from spikeflops.run import git_commit

            commit, dirty = git_commit()
            if commit and not save.startswith(commit[:12]):
                config.option.benchmark_save = f"{commit[:12]}{'-dirty' if dirty else ''}_{save}"


@pytest.hookimpl(trylast=True)            # after -k / -m have deselected what they will
def pytest_collection_modifyitems(config, items):
    import torch

    from workloads.superspike.genn_backend import pygenn_available

    no_gpu = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    no_genn = pytest.mark.skip(reason="needs pygenn, which is not on the package registry: build it from "
                                      "GeNN's source (see README) to run the GeNN tests")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "genn" in item.keywords and not pygenn_available():
            item.add_marker(no_genn)
    _leave_the_table_to_the_twin_run(config, items)


TWIN_FIXTURE = "pytest_benchmark_table_run"


def _leave_the_table_to_the_twin_run(config, items):
    """A plain run that also runs the twin test needs the table once, not twice.

    The twin test's fixture runs tests/test_benchmarks.py under --benchmark-only in a child pytest and
    fails unless every one of them passes, so running them here too would prove nothing more: it
    would only measure every case of the table a third time (after asv's run). Selecting
    tests/test_benchmarks.py alone still runs them here.
    """
    if config.pluginmanager.hasplugin("benchmark") and not config.option.benchmark_disable:
        return                                  # a timed run: the table is what it is for
    if not any(TWIN_FIXTURE in getattr(item, "fixturenames", ()) for item in items):
        return
    table = [item for item in items if item.nodeid.startswith("tests/test_benchmarks.py")]
    if table:
        config.hook.pytest_deselected(items=table)
        items[:] = [item for item in items if item not in table]
        config._spikeflops_table_deselected = len(table)


def pytest_terminal_summary(terminalreporter, config):
    n = getattr(config, "_spikeflops_table_deselected", 0)
    if n:
        terminalreporter.write_line(f"tests/test_benchmarks.py: {n} cases deselected here; the twin test's child "
                                    f"run ({TWIN_FIXTURE}) runs them under --benchmark-only and requires every one to pass")


@pytest.fixture(scope="session")
def device(request):
    from workloads.hardware import resolve_device

    return resolve_device(request.config.getoption("device"))


def pytest_benchmark_update_machine_info(config, machine_info):
    from workloads.hardware import machine_facts, machine_name

    facts = machine_facts()
    machine_info["spikeflops_machine"] = machine_name()
    for key in ("gpu", "gpu_memory_bytes", "gpu_count", "driver", "cuda_runtime", "torch", "pygenn", "thop",
                "numpy", "cpu", "cpu_count", "memory_bytes"):
        machine_info[key] = facts.get(key)
