"""The `asv run -b` pattern that selects exactly the table rows a profile runs on this machine.

asv starts a process for every parameter combination it is asked to run, even one that will be
skipped; combinations left out by ``-b`` cost nothing (asv records them as n/a). asv matches
each pattern against ``module.Class.method(param repr, param repr, ...)``.
"""

from __future__ import annotations

import re

from workloads.profiles import Profile
from workloads.registry import select


def asv_bench_regex(profile: Profile) -> str:
    alternatives = []
    for row in select(None, profile):
        inner = ", ".join(repr(v) for v in row.param_values())
        alternatives.append(rf"\.{re.escape(row.family)}\.\w+\({re.escape(inner)}\)")
    if not alternatives:
        return "^$"                              # nothing runs here: select nothing, never everything
    return "(" + "|".join(alternatives) + ")$"
