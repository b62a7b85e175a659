"""The registry: joins every workload's own declaration (``<package>/table.py``: its lines, families,
metrics and measure functions) into one table that both harnesses and `spikeflops run` read.

Adding a workload is one package plus one line of :data:`WORKLOAD_TABLES`. A workload that lives
outside this repository is added for a run by naming its table module in
``SPIKEFLOPS_EXTRA_WORKLOADS`` (comma-separated module names, each defining ``WORKLOAD``).
This module imports no torch: asv's processes decide what to skip before paying for it.
"""

from __future__ import annotations

import functools
import glob
import importlib
import os
import re
import sys
from collections.abc import Mapping

from .errors import SpikeflopsError
from .metrics import Family, Metric, Row, Workload
from .profiles import Profile, get_profile

# the workloads a user benchmarks; more (the checkout's own suite costs, a user's) come by
# SPIKEFLOPS_EXTRA_WORKLOADS
WORKLOAD_TABLES = ("workloads.gpt.table", "workloads.superspike.table")
EXTRA_WORKLOADS_ENV_VAR = "SPIKEFLOPS_EXTRA_WORKLOADS"
# a regular expression over "<Family> <case id>": only the rows it finds run, in every harness (a quick
# look at a few cases, or the test suite's deliberately small table)
CASES_ENV_VAR = "SPIKEFLOPS_CASES"

_workloads: dict[str, Workload] | None = None
_families: dict[str, Family] | None = None
_rows: list[Row] | None = None
_case_index: dict[str, dict[str, Row]] | None = None


def workloads() -> dict[str, Workload]:
    global _workloads, _families
    if _workloads is None:
        extra = [m.strip() for m in os.environ.get(EXTRA_WORKLOADS_ENV_VAR, "").split(",") if m.strip()]
        found, families = {}, {}
        for module_name in (*WORKLOAD_TABLES, *extra):
            try:
                workload = importlib.import_module(module_name).WORKLOAD
            except Exception as exc:  # noqa: BLE001 - a user's table module may fail any way: one line naming it
                where = f"line {exc.lineno}: " if isinstance(exc, SyntaxError) and exc.lineno else ""
                raise SpikeflopsError(f"workload table {module_name!r} (from {EXTRA_WORKLOADS_ENV_VAR} or "
                                      f"WORKLOAD_TABLES) cannot be loaded: {where}{type(exc).__name__}: "
                                      f"{str(exc).strip().splitlines()[0] if str(exc).strip() else ''}") from None
            if workload.name in found:
                raise SpikeflopsError(f"two workloads are named {workload.name!r}")
            for family in workload.families:
                if family.name in families:
                    raise SpikeflopsError(f"metric family {family.name!r} is declared by two workloads")
                families[family.name] = family
            found[workload.name] = workload
        _workloads, _families = found, families
    return _workloads


def reset() -> None:
    """Forget what was loaded (a test that changes SPIKEFLOPS_EXTRA_WORKLOADS)."""
    global _workloads, _families, _rows, _case_index
    _workloads = _families = _rows = _case_index = None


class _Families(Mapping):
    """name -> Family over every registered workload, loaded on first use."""

    def _d(self) -> dict[str, Family]:
        workloads()
        return _families

    def __getitem__(self, name):
        return self._d()[name]

    def __iter__(self):
        return iter(self._d())

    def __len__(self):
        return len(self._d())


FAMILIES: Mapping[str, Family] = _Families()


def metric(name: str) -> Metric | None:
    """The declaration of ``<Family>.<metric>``, or None when no registered family has it."""
    family_name, _, short = name.partition(".")
    family = FAMILIES.get(family_name)
    if family is None:
        return None
    return family.declared(short)


def all_metrics() -> list[tuple[str, Metric]]:
    return [(f"{f.name}.{m.name}", m) for f in FAMILIES.values() for m in f.metrics + f.companions]


def all_rows(family: str | None = None) -> list[Row]:
    """Every row of every workload (every profile), or those of one family."""
    global _rows
    if _rows is None:
        merged: dict[tuple, Row] = {}
        for workload in workloads().values():
            for row in workload.rows():     # one key, one row: lines that share a case share its profiles
                key = (row.family, row.param_values())
                if key in merged:
                    if merged[key].case != row.case:
                        raise SpikeflopsError(f"the case table gives {row.family}{key[1]} two different cases")
                    row = Row(row.family, row.case, tuple(dict.fromkeys(merged[key].profiles + row.profiles)),
                              row.param_names)
                merged[key] = row
        _rows = list(merged.values())
    if family is not None and family not in FAMILIES:
        raise SpikeflopsError(f"unknown metric family {family!r}; choose one of {', '.join(FAMILIES)}")
    return [r for r in _rows if family is None or r.family == family]


def device_available(device: str) -> bool:
    """Can this machine run ``device``? Answered without importing torch where no GPU device node exists."""
    if not device.startswith("cuda"):
        return True
    if sys.platform.startswith("linux") and not (glob.glob("/dev/nvidia[0-9]*") or os.path.exists("/dev/kfd")):
        return False
    import torch

    return torch.cuda.is_available()


def select(family: str | None = None, profile: Profile | str | None = None, runnable_only: bool = True) -> list[Row]:
    """The rows ``profile`` measures; ``runnable_only``: only those this machine can run."""
    chosen = profile if isinstance(profile, Profile) else get_profile(profile)
    rows = [r for r in all_rows(family) if chosen.name in r.profiles]
    if runnable_only:
        rows = [r for r in rows if why_not_runnable(r, chosen) is None]
    return rows


def why_not_runnable(row: Row, profile: Profile | None = None) -> str | None:
    """Why this machine and profile skip ``row`` (None: it runs)."""
    profile = profile or get_profile()
    if profile.name not in row.profiles:
        return f"not in the {profile.name} profile"
    chosen = _case_selection()
    if chosen is not None and not chosen.search(f"{row.family} {case_id(row)}"):
        return f"not selected by {CASES_ENV_VAR}"
    if not device_available(row.device):
        return f"no {row.device} device on this machine"
    if profile.needs_gpu and not device_available("cuda"):
        return gpu_profile_refusal(profile)
    return workloads()[FAMILIES[row.family].workload].unavailable(row)


def gpu_profile_refusal(profile: Profile) -> str:
    return (f"the {profile.name} profile is sized for a GPU runner and this machine has none "
            "(its CPU rows alone can take tens of GB); use the ci profile here")


def _case_selection():
    """The compiled SPIKEFLOPS_CASES pattern, or None when it is unset."""
    text = os.environ.get(CASES_ENV_VAR)
    return _compile_selection(text) if text else None


@functools.lru_cache(maxsize=8)
def _compile_selection(text: str):
    try:
        return re.compile(text)
    except re.error as exc:
        raise SpikeflopsError(f"{CASES_ENV_VAR}={text!r} is not a regular expression ({exc})") from None


# asv's one parameter of every family: the case id of each row (asv would otherwise print and start a process
# for every combination of the separate parameters, most of them no row: 480 cells for GPTStep's 30 rows)
ASV_CASE_PARAM = "case"


def asv_params(family: str, profile: Profile | None = None) -> tuple[list[list], list[str]]:
    """asv ``params`` and ``param_names`` of a family: one axis, the ids of the rows ``profile`` runs on this
    machine, so every case asv lists and prints can run here. The grid differs between machines; the readers
    expand a case id back into the family's named parameters (:func:`row_for_case`), and `keep` merges the
    indexes of every machine."""
    return [[case_id(row) for row in select(family, profile)]], [ASV_CASE_PARAM]


def row_for_case(family: str, case: str) -> Row | None:
    """The row of ``family`` whose :func:`case_id` is ``case``, or None (a row of another table version)."""
    return _rows_by_case(family).get(case)


def _rows_by_case(family: str) -> dict[str, Row]:
    global _case_index
    if _case_index is None:
        index: dict[str, dict[str, Row]] = {}
        for row in all_rows():
            cases = index.setdefault(row.family, {})
            cid = case_id(row)
            if cid in cases:
                raise SpikeflopsError(f"{row.family}: two rows have the case id {cid!r} "
                                      f"({cases[cid].param_values()} and {row.param_values()})")
            cases[cid] = row
        _case_index = index
    return _case_index.get(family, {})


def case_id(row: Row) -> str:
    """A row's id in asv's grid, test names and SPIKEFLOPS_CASES: its parameter values joined by dashes."""
    return case_id_of(row.param_values())


def case_id_of(values) -> str:
    return "-".join(str(v) for v in values)
