"""asv suites: one class per metric family of every workload in the registry (``workloads.registry``).

A workload added to the registry appears here with no edit; its benchmarks are named
``bench_<workload>.<Family>.<method>``. A family none of whose rows this profile runs on this machine has
no class here: asv lists only what can run.
"""

from .common import PROFILE, suite
from workloads.registry import FAMILIES, select

for _name in FAMILIES:
    if select(_name, PROFILE):
        globals()[_name] = suite(_name)
