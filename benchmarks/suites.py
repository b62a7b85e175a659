"""asv suites: one class per metric family of every workload in the registry (``workloads.registry``).

A workload added to the registry appears here with no edit; its benchmarks are named
``bench_<workload>.<Family>.<method>``.
"""

from .common import suite
from workloads.registry import FAMILIES

for _name in FAMILIES:
    globals()[_name] = suite(_name)
