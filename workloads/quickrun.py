"""`spikeflops run`: a quick pass over both workloads, sized for the hardware present, with a summary."""

from __future__ import annotations

import os
import sys
import time

from .hardware import machine_facts, machine_name, resolve_device
from .profiles import PROFILES, get_profile
from .resultsio import write_json
from .tables import format_table, percent, si


def add_parser(subparsers) -> None:
    p = subparsers.add_parser("run", help="quick run of both workloads sized for this machine, with a summary")
    p.add_argument("--profile", choices=tuple(PROFILES), default=None,
                   help="ci on a CPU, regular on a GPU unless given (or SPIKEFLOPS_PROFILE)")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default=None, help="write all records to this JSON file")
    p.set_defaults(func=cmd_run)


def _say(msg):
    print(msg, file=sys.stderr, flush=True)


def cmd_run(args) -> int:
    from .gpt.flops import flop_report
    from .gpt.config import get_config
    from .gpt.maxbatch import ProbeSpec, search_max_batch
    from .gpt.mfu import measure_step
    from .superspike.genn_backend import pygenn_available
    from .superspike.workload import run_training

    device = resolve_device(args.device)
    profile = get_profile(args.profile or os.environ.get("SPIKEFLOPS_PROFILE")
                          or ("regular" if device.type == "cuda" else "ci"))
    dtype = "bfloat16" if device.type == "cuda" else "float32"
    _say(f"spikeflops run: profile {profile.name} on {machine_name()} ({device})")
    rows, records = [], {"machine": machine_facts(), "profile": profile.name, "gpt": [], "superspike": []}
    started = time.perf_counter()
    for size in profile.gpt_sizes:
        cfg = get_config(size, profile.gpt_context)
        flops = flop_report(size, cfg, profile.gpt_batch)
        rows.append([f"GPT {size}", "train FLOPs / step (exact)", f"{flops.train_exact:.3e}"])
        for variant in ("book", "fast"):
            _say(f"  GPT {size} {variant}: timing a training step ...")
            r = measure_step(size, variant, dtype, profile.gpt_batch, device, repeats=profile.gpt_repeats,
                             context_length=profile.gpt_context)
            records["gpt"].append(r)
            mfu = percent(r["mfu"]) if r["mfu"] is not None else f"{percent(r['mfu_vs_measured_peak'])} of measured"
            rows.append([f"GPT {size} {variant}", f"tokens/s, MFU ({dtype})", f"{r['tokens_per_s']:,.0f}, {mfu}"])
        limit = None if device.type == "cuda" else profile.gpt_memory_limit_bytes
        _say(f"  GPT {size}: max training batch ...")
        mb = search_max_batch(ProbeSpec(size, "fast", dtype, "train", profile.gpt_context), device, limit)
        records["gpt"].append({"size": size, "mode": "train", "memory_limit_bytes": limit, **mb.to_dict()})
        rows.append([f"GPT {size} fast", "max training batch" + (f" ({si(limit, 'B')})" if limit else ""),
                     mb.max_batch])
    backends = ["torch"] + (["genn"] if pygenn_available() else [])
    for backend in backends:
        _say(f"  SuperSpike {profile.superspike_size} {backend}: {profile.superspike_trials} trials ...")
        res = run_training(profile.superspike_size, backend, profile.superspike_trials, seed=0,
                           device="cuda" if device.type == "cuda" else "cpu",
                           compile=False, kernel_profiling=backend == "genn")
        records["superspike"].append(res.to_dict())
        walls = sorted(r.wall_s for r in res.records)
        rows.append([f"SuperSpike {profile.superspike_size} {backend}", "error trial 0 -> last",
                     f"{res.records[0].trial_error:.3g} -> {res.records[-1].trial_error:.3g}"])
        rows.append([f"SuperSpike {profile.superspike_size} {backend}", "s / trial (median)",
                     f"{walls[len(walls) // 2]:.3f}"])
    if not pygenn_available():
        rows.append(["SuperSpike genn", "skipped", "pygenn not installed"])
    if args.out:
        write_json(args.out, records)
    print(f"spikeflops run ({profile.name} profile, {device}, {time.perf_counter() - started:.0f} s)")
    print(format_table(["workload", "metric", "value"], rows))
    return 0
