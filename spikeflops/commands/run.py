"""`spikeflops run`: the profile's cases of the table on this machine, with summary tables and a results file."""

from __future__ import annotations

import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.profiles import PROFILE_ENV_VAR, PROFILES, get_profile
from workloads.registry import FAMILIES, case_id, select, why_not_runnable

from ..argtypes import output_file
from ..gitrepo import git_commit
from ..results.fileio import check_writable, claim_new, save_json
from ..results import RunFile
from ..progress import say
from ..run import (CONTENDED_SHARE, format_value, format_load, case_label, measure_alongside,
                   measure_rows, reference_tables, runs_alongside)
from ..tables import fit_prose, format_table


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="the profile's cases on this machine (GPU: regular, CPU: ci), "
                                          "with summary tables and a results file")
    p.add_argument("--profile", choices=tuple(PROFILES), default=None,
                   help="default: SPIKEFLOPS_PROFILE, else regular on a GPU machine and ci on a CPU")
    p.add_argument("--families", nargs="+", default=None, metavar="FAMILY",
                   help=f"only these metric families ({', '.join(FAMILIES)})")
    p.add_argument("--out", default=None, type=output_file,
                   help="results file (default: spikeflops-out/run-<machine>-<commit>-<time>.json)")
    p.add_argument("--json", action="store_true", help="print the results as JSON instead of tables")
    p.set_defaults(func=cmd_run)


def cmd_run(args) -> int:
    from workloads.hardware import machine_facts, machine_name
    from workloads.load import CPU_THREADS, LoadProbe

    profile = get_profile(args.profile or os.environ.get(PROFILE_ENV_VAR)
                          or ("regular" if select("GPTStep", "regular") else "ci"))
    families = args.families or list(FAMILIES)
    unknown = [f for f in families if f not in FAMILIES]
    if unknown:
        raise SpikeflopsError(f"unknown family {unknown[0]!r}; choose from {', '.join(FAMILIES)}")
    rows = [r for f in families for r in select(f, profile)]
    left_out: dict[str, list[str]] = {}
    for row in (r for f in families for r in select(f, profile, runnable_only=False)):
        why = why_not_runnable(row, profile)
        if why:
            left_out.setdefault(why, []).append(f"{row.family} {case_id(row)}")
    if not rows:
        raise SpikeflopsError(f"the {profile.name} profile has no case this machine can run"
                              + (f" ({'; '.join(left_out)})" if left_out else ""))
    commit, dirty = git_commit()
    started = time.time()
    default_out = Path("spikeflops-out") / (
        f"run-{machine_name()}-{(commit or 'nocommit')[:12]}{'-dirty' if dirty else ''}-"
        f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(started))}.json")
    check_writable(args.out or default_out)      # an unwritable output folder is found before measuring
    say(f"spikeflops run: {len(rows)} cases of the {profile.name} profile on {machine_name()}")
    for why, cases in left_out.items():            # never dropped in silence
        say(f"  left out {len(cases)} case{'s' if len(cases) != 1 else ''} ({why}): {', '.join(cases[:3])}"
             + (f" and {len(cases) - 3} more" if len(cases) > 3 else ""))
    import torch

    # exact and seeded CPU rows first, side by side; then every timing alone, under the load probe: the
    # evidence of a busy machine travels with the numbers (load average and the CPU this process got; a
    # CPU-only run measures on CPU_THREADS threads, so its share is per those threads)
    alongside = [r for r in rows if runs_alongside(r)]
    alone = [r for r in rows if not runs_alongside(r)]
    measured = dict(zip(map(id, alongside), measure_alongside(alongside, profile)))
    with LoadProbe(threads=torch.get_num_threads() if torch.cuda.is_available() else CPU_THREADS) as probe:
        measured.update(zip(map(id, alone), measure_rows(alone, profile)))
    entries = [measured[id(r)] for r in rows]
    wall = time.time() - started
    load = probe.record.to_dict()
    facts = machine_facts()
    if any(m.noise == "counted" for r in rows for m in FAMILIES[r.family].metrics):
        from workloads.counting import counting_machine

        facts["counting_machine"] = counting_machine()   # decides whether counts of two machines compare
    results = RunFile(profile=profile.name, machine_name=machine_name(), machine=facts, commit=commit, dirty=dirty,
                      date=datetime.fromtimestamp(started, timezone.utc).isoformat(), wall_s=wall, load=load,
                      results=entries).to_dict()
    if args.json:
        import json

        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    else:
        table = []                      # a case's line, then its metrics under it: narrow enough for a terminal
        for e in entries:
            label = f"{e['family']} {case_label(e['params'])}"
            if "error" in e:
                table.append([label, "FAILED", e["error"]])
                continue
            table.append([label, "", ""])
            for name, value in e["metrics"].items():
                unit = e["units"].get(name, "")
                samples = [x for x in e["samples"].get(name, []) if x is not None]
                spread = (f"{format_value(min(samples), unit)} .. {format_value(max(samples), unit)} (n={len(samples)})"
                          if len(samples) > 1 else "")
                table.append([f"  {name}", format_value(value, unit), spread])
        print(fit_prose(f"spikeflops run: {profile.name} profile on {machine_name()}, {wall:.0f} s; "
                        f"1-min load average {format_load(load['load_before'])} -> {format_load(load['load_after'])} "
                        f"on {load['cores']} cores; CPU share {format_load(load['cpu_share'])} of {load['threads']} "
                        f"intra-op thread{'s' if load['threads'] != 1 else ''}"))
        if load["cpu_share"] is not None and load["cpu_share"] < CONTENDED_SHARE:
            print(fit_prose(contention_banner(load["cpu_share"], entries)))
        print(format_table(["case / metric", "value (median)", "range"], table))
        for title, headers, rows in reference_tables(entries):
            print(f"\n{title}")
            print(format_table(headers, rows))
    # written after the summary is printed: a full disk costs the file, never what the run showed
    out = Path(args.out) if args.out else claim_new(default_out)
    save_json(out, results, claimed=not args.out)
    failed = [f"{e['family']} {case_label(e['params'])}" for e in entries if "error" in e]
    say(f"results: {out}")
    print(closing_line(len(entries) - len(failed), left_out, failed, profile.name, wall))
    return 1 if failed else 0


def contention_banner(share: float, entries: list[dict]) -> str:
    """What a busy co-tenant did to this run, in terms of what it measured: timings are spoiled, counts and
    exact or seeded numbers are not."""
    from workloads.registry import metric

    noisy = sorted({f"{e['family']}.{name}" for e in entries if "error" not in e for name in e.get("metrics", {})
                    if (m := metric(f"{e['family']}.{name}")) is not None and m.noise in ("timing", "median")})
    if not noisy:
        return (f"machine busy: this run got {share:.2f} of its CPU; it measured no timing (its counts and exact "
                "numbers are what the code does, whatever the load)")
    shown = ", ".join(noisy[:3]) + (f" and {len(noisy) - 3} more" if len(noisy) > 3 else "")
    return (f"MACHINE CONTENDED: this run got {share:.2f} of its CPU (a co-tenant was busy): its timings "
            f"({shown}) are not what this machine does, and the gate will not judge them")


def closing_line(measured: int, left_out: dict, failed: list[str], profile: str, wall: float) -> str:
    """The run in one line: what was measured, what was left out and why, what failed."""
    parts = [f"spikeflops run: {measured} case{'s' if measured != 1 else ''} measured ({profile} profile, {wall:.0f} s)"]
    for why, cases in left_out.items():
        parts.append(f"{len(cases)} left out ({why})")
    if failed:
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        parts.append(f"{len(failed)} FAILED: {', '.join(failed[:3])}{more}")
    else:
        parts.append("none failed")
    return "; ".join(parts)
