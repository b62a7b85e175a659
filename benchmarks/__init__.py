"""The harnesses of this checkout: asv's suites (``suites.py``) and pytest-benchmark's twins
(``test_pytest_benchmark.py``), generated from the registry.

Importing this package adds the suite's own costs (``benchmarks.suite_costs``: reading results, ``--help``,
the test modules) to the registry of every process it starts: they measure this project, not a user's
workload, so the installed package's registry never lists them.
"""

import os

SUITE_COSTS = "benchmarks.suite_costs"
EXTRA_WORKLOADS_ENV_VAR = "SPIKEFLOPS_EXTRA_WORKLOADS"      # workloads.registry's; no import here, no cost


def add_suite_costs(environ=os.environ) -> None:
    extra = [m.strip() for m in environ.get(EXTRA_WORKLOADS_ENV_VAR, "").split(",") if m.strip()]
    if SUITE_COSTS not in extra:
        environ[EXTRA_WORKLOADS_ENV_VAR] = ",".join([*extra, SUITE_COSTS])


add_suite_costs()
