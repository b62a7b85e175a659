"""`spikeflops gpt scale`: GPT training on 1..N ranks under torchrun (DDP or FSDP2), as a table and JSON."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.gpt.scale import STRATEGIES, ScaleCase, world_sizes

from ..argtypes import output_file, positive_int, whole_number
from ..results.fileio import write_json
from ..tables import format_table, percent, si
from ..progress import say


def add_parser(gpt_subparsers) -> None:
    p = gpt_subparsers.add_parser(
        "scale", help="training throughput, MFU and weak-scaling efficiency on 1..N ranks (torchrun)",
        description="Launches torchrun on this host (standalone rendezvous) for 1, 2, 4, ... N ranks, each "
                    "rank training on its own local batch (weak scaling). Multi-node: see docs/scaling.md.")
    p.add_argument("--nproc", type=positive_int, required=True, help="largest number of ranks (GPUs, or CPU "
                                                                      "processes sharing the cores)")
    p.add_argument("--strategy", choices=(*STRATEGIES, "both"), default="ddp")
    p.add_argument("--sizes", nargs="+", default=None, metavar="SIZE",
                   help="model sizes; default gpt-small on GPUs, gpt-nano on a CPU")
    p.add_argument("--local-batch", type=positive_int, default=None,
                   help="sequences per rank per step (default 8 on GPUs, 2 on a CPU)")
    p.add_argument("--variant", choices=("book", "fast"), default="fast")
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                   help="default: bfloat16 on GPUs, float32 on a CPU")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                   help="cuda: one GPU per rank (nccl); cpu: gloo")
    p.add_argument("--warmup", type=whole_number(0), default=2)
    p.add_argument("--repeats", type=positive_int, default=5)
    p.add_argument("--port", type=whole_number(1), default=None,
                   help="rendezvous port (default: torchrun picks a free one)")
    p.add_argument("--max-batch", action="store_true",
                   help="also search the largest local batch of each strategy at N ranks")
    p.add_argument("--memory-limit", default=None, help="per-rank memory budget for --max-batch on a CPU (e.g. 1GiB)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--out", type=output_file, default=None,
                   help="JSON results file (default: spikeflops-out/scale-<machine>-<time>.json)")
    p.set_defaults(func=cmd_scale)


def _device(name: str) -> str:
    if name != "auto":
        return name
    from workloads.registry import device_available

    return "cuda" if device_available("cuda") else "cpu"


def cmd_scale(args) -> int:
    from workloads.gpt.launch import max_local_batch, measure_scaling
    from ..argtypes import parse_bytes
    from workloads.hardware import machine_facts, machine_name

    device = _device(args.device)
    on_cpu = device == "cpu"
    sizes = args.sizes or (["gpt-nano"] if on_cpu else ["gpt-small"])
    dtype = args.dtype or ("float32" if on_cpu else "bfloat16")
    local_batch = args.local_batch or (2 if on_cpu else 8)
    strategies = STRATEGIES if args.strategy == "both" else (args.strategy,)
    limit = parse_bytes(args.memory_limit) if args.memory_limit else None
    if args.max_batch and on_cpu and limit is None:
        raise SpikeflopsError("--max-batch on a CPU needs --memory-limit (a per-rank budget, e.g. 1GiB)")
    # every bad name fails here, before the first launch
    cases = [ScaleCase(size, strategy, args.nproc, local_batch, args.variant, dtype, device)
             for size in sizes for strategy in strategies]
    worlds = world_sizes(args.nproc)
    out = Path(args.out) if args.out else Path("spikeflops-out") / (
        f"scale-{machine_name()}-{time.strftime('%Y%m%dT%H%M%S')}.json")

    records, max_batches, rows = [], [], []
    for case in cases:
        say(f"{case.size} {case.strategy}: {len(worlds)} launches ({', '.join(map(str, worlds))} ranks) ...")

        def progress(done):
            r = done.record
            say(f"  {r.case.world_size} rank(s): {r.tokens_per_s:,.0f} tokens/s in {done.seconds:.0f} s")

        for r in measure_scaling(case, args.nproc, port=args.port, warmup=args.warmup, repeats=args.repeats,
                                 progress=progress):
            records.append(r.to_dict())
            rows.append([case.size, case.strategy, r.case.world_size, r.case.global_batch,
                         si(r.tokens_per_s), si(r.tokens_per_s_per_rank), percent(r.mfu),
                         percent(r.scaling_efficiency), percent(r.collective_share)])
        if args.max_batch:
            found = max_local_batch(case, limit, progress=lambda p, o, c=case: say(
                f"  {c.strategy} x{c.world_size} local batch {p.batch}: {'fits' if p.fits else 'out of memory'} "
                f"({p.seconds:.1f} s); {o.describe(p.seconds)}"))
            max_batches.append({"case": case.to_dict(), "max_local_batch": found.max_batch,
                                "hit_cap": found.hit_cap, "memory_limit_bytes": limit,
                                "probes": [{"batch": p.batch, "fits": p.fits} for p in found.probes]})

    results = {"machine": machine_facts(), "records": records, "max_local_batch": max_batches}
    write_json(out, results)
    if args.json:
        json.dump(results, sys.stdout, indent=2, default=str)
        print()
    else:
        print(f"GPT training under torchrun on {device} ({dtype}, {args.variant}, local batch {local_batch}, "
              "weak scaling: efficiency = tokens/s per rank over rank 0 alone, timed first in the same launch)")
        print(format_table(["size", "strategy", "ranks", "global batch", "tokens/s", "per rank", "MFU/device",
                            "efficiency", "collectives"], rows))
        for m in max_batches:
            c = m["case"]
            print(f"max local batch, {c['size']} {c['strategy']} x{c['world_size']}: "
                  f"{m['max_local_batch']}{'+' if m['hit_cap'] else ''}")
    say(f"results: {out}")
    return 0
