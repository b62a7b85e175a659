"""Top-level pytest configuration: device option, markers, skips, and machine facts for pytest-benchmark."""

from __future__ import annotations

import os

import pytest


def pytest_addoption(parser):
    group = parser.getgroup("spikeflops")
    group.addoption("--device", default="cpu", help="device for workload tests and benchmarks: cpu, cuda or auto")
    group.addoption("--profile", default=None, help="run profile for benchmarks: ci, regular or full "
                                                    "(default: SPIKEFLOPS_PROFILE, else ci)")


# What pytest-xdist sets in a worker's environment: a pytest that a test starts (a pytest-benchmark run, the
# GPU kit's stages) would inherit it and take itself for a worker (pytest-benchmark then refuses to time).
XDIST_WORKER_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID")


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config):
    _refuse_a_loadgroup_that_cannot_group(config)
    if hasattr(config, "workerinput"):             # an xdist worker: the processes it starts are sessions of their own
        for name in XDIST_WORKER_VARIABLES:
            os.environ.pop(name, None)
    if config.getoption("profile"):
        os.environ["SPIKEFLOPS_PROFILE"] = config.getoption("profile")
    if config.pluginmanager.hasplugin("benchmark") and config.getoption("benchmark_only"):
        # `pytest --benchmark-only` with no paths times the benchmarks, as pytest-benchmark users expect
        # (testpaths holds the tests; benchmarks/ holds the harness)
        if config.args_source == pytest.Config.ArgsSource.TESTPATHS:
            config.args[:] = [str(config.rootpath / "benchmarks")]
        _refuse_a_gpu_profile_without_a_gpu()
    # Plain `pytest` runs each benchmark once as a test; timing only with --benchmark-only/--benchmark-enable.
    # (Set here, not in addopts: pytest-benchmark refuses --benchmark-only next to --benchmark-disable.)
    if config.pluginmanager.hasplugin("benchmark"):
        if not (config.getoption("benchmark_only") or config.getoption("benchmark_enable")):
            config.option.benchmark_disable = True
    # pytest-benchmark keys its storage by OS and Python only; put each machine (GPU model included) in its own folder.
    if config.pluginmanager.hasplugin("benchmark"):
        storage = config.getoption("benchmark_storage", None)
        if storage and storage.rstrip("/").endswith("pytest-benchmark"):
            from workloads.hardware import machine_name

            config.option.benchmark_storage = f"{storage.rstrip('/')}/{machine_name()}"
        # Saved runs name their commit (and a dirty tree), as asv's files do: NNNN_<commit>[-dirty]_<name>.json
        save = config.getoption("benchmark_save", None)
        timing = config.getoption("benchmark_only") or config.getoption("benchmark_enable")
        if timing and not save and not config.getoption("benchmark_autosave", False):
            # a timed run is always saved (into the ignored storage), so `spikeflops keep` has it to keep
            save = "run"
        if save:
            from spikeflops.gitrepo import git_commit

            config.option.benchmark_save = save
            commit, dirty = git_commit()
            if commit and not save.startswith(commit[:12]):
                config.option.benchmark_save = f"{commit[:12]}{'-dirty' if dirty else ''}_{save}"


def _refuse_a_gpu_profile_without_a_gpu() -> None:
    from workloads.profiles import get_profile
    from workloads.registry import device_available, gpu_profile_refusal

    profile = get_profile()
    if profile.needs_gpu and not device_available("cuda"):
        raise pytest.UsageError(gpu_profile_refusal(profile))


@pytest.hookimpl(trylast=True)            # after -k / -m have deselected what they will
def pytest_collection_modifyitems(config, items):
    import torch

    from workloads.superspike.genn_backend import pygenn_available

    no_gpu = pytest.mark.skip(reason="needs a CUDA device (torch.cuda.is_available() is False)")
    no_genn = pytest.mark.skip(reason="needs pygenn, which is not on the package registry: build it from "
                                      "GeNN's source (docs/genn.md) to run the GeNN tests")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(no_gpu)
        if "genn" in item.keywords and not pygenn_available():
            if os.environ.get("SPIKEFLOPS_REQUIRE_GENN") == "1":
                raise pytest.UsageError("SPIKEFLOPS_REQUIRE_GENN=1 but pygenn cannot be imported: the GeNN tests "
                                        "would skip (install pygenn: docs/genn.md)")
            item.add_marker(no_genn)


def _refuse_a_loadgroup_that_cannot_group(config) -> None:
    """pytest 9.2 keeps a test's node id where pytest-xdist 3.8 cannot add its group to it: `--dist loadgroup` then
    spreads a group over the workers and each end-to-end command runs once per worker, twice the work. Said at
    the start, never silently paid (pyproject.toml pins pytest below 9.2)."""
    from importlib.metadata import version

    if hasattr(config, "workerinput") or config.getoption("dist", "no") != "loadgroup":
        return

    def release(name: str) -> tuple[int, ...]:
        return tuple(int(part) for part in version(name).split(".")[:2] if part.isdigit())

    if release("pytest") >= (9, 2) and release("pytest-xdist") <= (3, 8):
        raise pytest.UsageError(f"--dist loadgroup does not group under pytest {version('pytest')} with pytest-xdist "
                                f"{version('pytest-xdist')}: install the test extras (pytest<9.2)")


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
    from workloads import counting

    if counting.measured_here():          # instructions were counted: the machine valgrind showed them
        machine_info["counting_machine"] = counting.counting_machine()
