"""`spikeflops gpt flops | max-batch | mfu`: the notebook's three tables, corrected."""

from __future__ import annotations

import json
import sys
import time

from workloads.gpt.case import MODES, GPTCase
from workloads.gpt.config import BOOK_SIZES

from . import gpt_scale
from ..argtypes import non_negative_int, output_file, parse_bytes, positive_int
from ..results.fileio import write_json
from ..tables import format_table, percent, si


def add_parser(subparsers) -> None:
    gpt = subparsers.add_parser("gpt", help="GPT-2 FLOPs, maximum batch size and MFU")
    sub = gpt.add_subparsers(dest="gpt_command", required=True, metavar="{flops,max-batch,mfu,scale}")

    def common(p, batch_default=None):
        p.add_argument("--sizes", nargs="+", default=None, metavar="SIZE",
                       help="model sizes (gpt-small gpt-medium gpt-large gpt-xl gpt-mini gpt-nano); default: the "
                            f"book's four, or {' '.join(CPU_DEFAULT_SIZES)} when timing on a CPU")
        p.add_argument("--context-length", type=positive_int, default=None, help="override the preset's context length")
        p.add_argument("--json", action="store_true", help="print JSON instead of a table")
        p.add_argument("--out", default=None, type=output_file, help="also write the JSON records to this file")

    p = sub.add_parser("flops", help="forward / training FLOPs by thop, exact counter and analytic formula")
    common(p)
    p.add_argument("--batch", type=positive_int, default=2)
    p.set_defaults(func=cmd_flops)

    for name, helptext in (("max-batch", "largest batch that fits (grow, then bisect)"),
                           ("mfu", "timed training step: tokens/s and MFU")):
        p = sub.add_parser(name, help=helptext)
        common(p)
        p.add_argument("--variant", choices=("book", "fast"), default="book")
        p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"), default=None,
                       help="default: bfloat16 on a GPU, float32 on a CPU (whose bf16 matmuls are slow paths)")
        p.add_argument("--device", default="auto", help="auto, cpu or cuda[:N]")
        p.add_argument("--precision", choices=("pure", "autocast"), default="pure",
                       help="pure: the model in --dtype (the notebook's); autocast: fp32 weights, --dtype compute")
        p.add_argument("--pad-vocab", action="store_true",
                       help="pad the vocabulary to a multiple of 64 (another model; labelled in the results)")
        if name == "max-batch":
            p.add_argument("--mode", choices=(*MODES, "both"), default="both")
            p.add_argument("--memory-limit", default=None,
                           help="memory budget (e.g. 4GiB); required on a CPU, caps the GPU otherwise")
            p.add_argument("--cap", type=positive_int, default=4096, help="largest batch tried")
            p.set_defaults(func=cmd_max_batch)
        else:
            p.add_argument("--mode", choices=("train", "forward"), default="train")
            p.add_argument("--batch", type=positive_int, default=8)
            p.add_argument("--compile", action="store_true", help="torch.compile the fast variant")
            p.add_argument("--warmup", type=non_negative_int, default=3)
            p.add_argument("--repeats", type=positive_int, default=10)
            p.add_argument("--gpu", default=None, help="take the datasheet peak of this GPU model instead")
            p.set_defaults(func=cmd_mfu)
    gpt_scale.add_parser(sub)


CPU_DEFAULT_SIZES = ("gpt-nano", "gpt-mini")      # the book's sizes take minutes a step on a CPU


def _device_defaults(args, device) -> None:
    """Fill --sizes and --dtype for the device: a CPU gets small models in float32, a GPU the book's in bf16."""
    on_cpu = device.type == "cpu"
    if args.sizes is None:
        args.sizes = list(CPU_DEFAULT_SIZES if on_cpu else BOOK_SIZES)
    if args.dtype is None:
        args.dtype = "float32" if on_cpu else "bfloat16"


def _emit(args, records, headers, rows, title):
    from workloads.hardware import machine_facts

    if args.out:
        write_json(args.out, {"machine": machine_facts(), "records": records})
    if args.json:
        json.dump(records, sys.stdout, indent=2)
        print()
    else:
        print(title)
        print(format_table(headers, rows))


def cmd_flops(args) -> int:
    from workloads.gpt.workload import measure_flops

    args.sizes = args.sizes or list(BOOK_SIZES)       # counted on meta tensors: the book's sizes anywhere
    records, rows = [], []
    cases = [GPTCase(size, batch=args.batch, context_length=args.context_length) for size in args.sizes]
    for i, case in enumerate(cases, 1):
        print(f"  counting FLOPs of {case.size} ({i}/{len(cases)}) ...", end="", file=sys.stderr, flush=True)
        start = time.perf_counter()
        r = measure_flops(case)
        print(f" {time.perf_counter() - start:.1f} s", file=sys.stderr, flush=True)
        records.append(r.to_dict())
        size = case.size
        rows.append([size, si(r.parameters), f"{r.forward_thop:.1e}", f"{r.forward_exact:.2e}",
                     f"{r.forward_analytic:.2e}", percent(r.forward_exact / r.forward_thop - 1),
                     f"{r.train_exact:.2e}", f"{r.train_analytic:.2e}"])
    _emit(args, records,
          ["size", "params", "fwd thop (notebook)", "fwd exact", "fwd analytic", "thop misses", "train exact",
           "train analytic"], rows,
          f"FLOPs per pass at batch {args.batch} (thop counts nn.Linear only, as the notebook; "
          f"exact = FlopCounterMode; "
          f"analytic = PaLM 2N+4LHQT / 6N+12LHQT per token)")
    return 0


def _progress(size, mode):
    def show(probe, outlook):
        print(f"  {size} {mode}: batch {probe.batch:5d} {'fits' if probe.fits else 'out of memory'} "
              f"({probe.seconds:.1f} s); {outlook.describe(probe.seconds)}", file=sys.stderr, flush=True)
    return show


def cmd_max_batch(args) -> int:
    from workloads.gpt.maxbatch import measure_max_batch
    from workloads.hardware import resolve_device

    device = resolve_device(args.device)
    _device_defaults(args, device)
    limit = parse_bytes(args.memory_limit) if args.memory_limit else None
    modes = MODES if args.mode == "both" else (args.mode,)
    records, rows = [], []
    cases = {(size, mode): GPTCase(size, args.variant, args.dtype, str(device), mode, batch=1,
                                   context_length=args.context_length, precision=args.precision,
                                   pad_vocab=args.pad_vocab) for size in args.sizes for mode in modes}
    for size in args.sizes:
        row = [size]
        for mode in modes:
            result = measure_max_batch(cases[(size, mode)], limit, cap=args.cap, progress=_progress(size, mode))
            records.append(result.to_dict())
            row.append(f"{result.max_batch}{'+' if result.hit_cap else ''}")
        rows.append(row)
    budget = f"budget {si(limit, 'B')}" if limit else "whole device"
    _emit(args, records, ["size", *(f"max batch ({m})" for m in modes)], rows,
          f"Largest batch on {device} ({budget}, {args.variant}, {args.dtype}); forward = no_grad, "
          f"train = forward + loss + backward + AdamW")
    return 0


def cmd_mfu(args) -> int:
    from workloads.gpt.workload import measure_step
    from workloads.hardware import require_gpu, resolve_device

    device = resolve_device(args.device)
    _device_defaults(args, device)
    if args.gpu:
        require_gpu(args.gpu)
    # every bad name or number fails before any timing starts
    cases = [GPTCase(size, args.variant, args.dtype, str(device), args.mode, args.batch, args.compile,
                     context_length=args.context_length, precision=args.precision, pad_vocab=args.pad_vocab)
             for size in args.sizes]
    records, rows = [], []
    for case in cases:
        print(f"  timing {case.label()} ...", file=sys.stderr, flush=True)
        rec = measure_step(case, args.warmup, args.repeats, gpu_override=args.gpu)
        r = rec.to_dict()
        records.append(r)
        t = r["seconds_per_step"]
        rows.append([case.size, args.batch, f"{t['median'] * 1e3:.1f} ms", f"±{t['iqr'] * 1e3:.1f}",
                     f"{r['tokens_per_s']:,.0f}", si(r["achieved_flops_per_s"], "FLOP/s"), percent(r["mfu"]),
                     percent(r["mfu_vs_measured_peak"])])
    peak = records[-1]["peak"] if records else None
    peak_text = f"MFU against the {peak['kind']} peak {si(peak['flops_per_s'], 'FLOP/s')} ({peak['source']})"
    _emit(args, records, ["size", "batch", "step (median)", "IQR", "tokens/s", "achieved", "MFU",
                          "MFU vs measured"], rows,
          f"{args.mode} step, {args.variant}, {args.dtype}, on {records[-1]['device_name']}; "
          f"{peak_text}")
    return 0
