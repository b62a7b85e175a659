"""`spikeflops error-rates`: the timing verdict's own false-alarm and detection rates on this machine."""

from __future__ import annotations

import contextlib
import os
import sys
import time

from workloads.errors import SpikeflopsError
from ..argtypes import non_negative_int, output_file, positive_int, positive_number
from ..regress.error_rates import DEFAULT_SIZES, MEASURES


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "error-rates", help="measure the timing verdict's false-alarm and detection rates on this machine",
        description="A/A comparisons of a real GPT step, and the same step with injected slowdowns, judged by "
                    "`spikeflops compare`'s paired statistic: false-alarm rate, detection rate per size (Wilson "
                    "95%% intervals) and the smallest slowdown detected 95%% of the time. Writes JSON.")
    p.add_argument("--trials", type=positive_int, default=40, help="comparisons per injected size (default 40)")
    p.add_argument("--rounds", type=positive_int, default=5, help="ABBA rounds per comparison (default 5, as CI)")
    p.add_argument("--max-rounds", type=positive_int, default=None, metavar="N",
                   help="add rounds while undecided, up to N, as `compare --max-rounds` (default: --rounds)")
    p.add_argument("--budget", type=positive_number, default=None,
                   help="seconds of steps per side per round (default: the ci profile's timing budget, as "
                        "`spikeflops run` in `compare`)")
    p.add_argument("--sizes", default=",".join(f"{s:g}" for s in DEFAULT_SIZES),
                   help="injected slowdowns as fractions of the step, comma-separated (0 = A/A)")
    p.add_argument("--size", dest="model_size", default="gpt-nano", help="GPT size of the step (default gpt-nano)")
    p.add_argument("--variant", default="fast", choices=("book", "fast"))
    p.add_argument("--mode", default="forward", choices=("forward", "train"))
    p.add_argument("--batch", type=positive_int, default=4)
    p.add_argument("--measure", choices=tuple(MEASURES), default="wall",
                   help="what each step is judged by: wall time (default), the thread's on-CPU time (slowdowns "
                        "injected as busy work), or blocked time (wall - on-CPU - run-queue wait; injected as "
                        "sleeps), each with its own rule from the thresholds file")
    p.add_argument("--busy", type=non_negative_int, default=0, metavar="N",
                   help="run N spinning processes beside the study (the error rates of a busy runner; default 0)")
    p.add_argument("--config", default=None, help="thresholds file (default: the shipped gate.toml)")
    p.add_argument("--counted", type=positive_int, default=None, metavar="AA",
                   help="the counted verdict instead (valgrind instructions of the SuperSpike step): AA A/A pairs, "
                        "--trials processes per injected share of work in --sizes (default 0.0025,0.005,0.01,0.02)")
    p.add_argument("--out", type=output_file, default=None,
                   help="write the table as JSON here (with --counted: after every process, marked incomplete "
                        "until the last)")
    p.add_argument("--counted-step", choices=("torch", "genn"), default="torch",
                   help="with --counted: the SuperSpike step counted, the torch backend's (default) or GeNN's CPU "
                        "backend's (needs pygenn)")
    p.add_argument("--resume", action="store_true",
                   help="with --counted: continue the stopped table in --out instead of starting again")
    p.set_defaults(func=cmd_error_rates)


def cmd_counted_error_rates(args) -> int:
    from pathlib import Path

    from workloads.counting import counting_machine
    from workloads.hardware import machine_facts
    from ..regress.error_rates import COUNTED_STEPS, measure_counted_error_rates
    from ..regress.rules import load_config
    from ..results.fileio import read_json, write_json
    from ..tables import format_table

    sizes = (0.0025, 0.005, 0.01, 0.02) if args.sizes == ",".join(f"{s:g}" for s in DEFAULT_SIZES) else \
        tuple(s for s in _sizes(args.sizes) if s > 0)
    family = "SuperSpikeGeNNInstructions" if args.counted_step == "genn" else "SuperSpikeInstructions"
    rule = load_config(args.config).rule_for(f"{family}.instructions_per_step")
    machine, counting = machine_facts(), counting_machine()
    done = None
    if args.resume:
        done = read_json(args.out)
        if not isinstance(done, dict) or done.get("complete") is not False:
            raise SpikeflopsError(f"{args.out}: not a stopped counted error-rate table: nothing to continue")
        if done.get("counting_machine") != counting:     # what a count depends on besides the code
            raise SpikeflopsError(f"{args.out}: counted on another setup ({done.get('counting_machine')}): counts "
                                  f"of two setups are not one table")
    elif args.out and Path(args.out).exists():
        raise SpikeflopsError(f"{args.out} exists: --resume continues a stopped table, or name another --out")
    started = done.get("started") if done else time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

    def save(table: dict) -> None:
        # after every process: hours of valgrind are not lost to a stop, and the file says how far it got
        table.update(machine=machine, counting_machine=counting, started=started,
                     date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        if args.out:
            write_json(args.out, table)

    table = measure_counted_error_rates(args.counted, args.trials, sizes, rule.threshold,
                                        progress=lambda t: print(t, file=sys.stderr, flush=True), save=save,
                                        done=done, step=COUNTED_STEPS[args.counted_step])
    rows = [[f"{100 * r['injected']:g}%" + (" (A/A)" if r["injected"] == 0 else ""), str(r["comparisons"]),
             str(r["flagged"]), f"{100 * r['flagged_rate']:.0f}% ({100 * r['flagged_rate_ci95'][0]:.2f}-"
             f"{100 * r['flagged_rate_ci95'][1]:.2f}%)",
             f"{100 * min(r['changes']):+.3f} .. {100 * max(r['changes']):+.3f}%"] for r in table["rows"]]
    print(f"counted verdict (valgrind instructions of the SuperSpike {args.counted_step} step, threshold "
          f"{100 * rule.threshold:g}%): A/A spread {100 * table['aa_spread']:.4f}%")
    print(format_table(["injected work", "comparisons", "flagged", "flagged (Wilson 95%)", "changes"], rows))
    return 0


def _sizes(text: str) -> tuple[float, ...]:
    """--sizes as fractions, checked before any measuring: finite, in [0, 10), at least one."""
    try:
        sizes = tuple(float(s) for s in text.split(",") if s.strip())
    except ValueError:
        raise SpikeflopsError(f"--sizes {text!r}: fractions such as 0,0.05,0.1") from None
    if not sizes or any(not (0 <= s < 10) for s in sizes):      # nan and inf fail this too
        raise SpikeflopsError(f"--sizes {text!r}: each slowdown must be a fraction in [0, 10)")
    return sizes


@contextlib.contextmanager
def spinning(processes: int):
    """``processes`` busy co-tenants (spinning processes that end with this one) for the block's duration."""
    import multiprocessing

    from workloads.isolate import die_with_parent

    ctx = multiprocessing.get_context("spawn")
    spinners = [ctx.Process(target=_spin, args=(die_with_parent, os.getpid()), daemon=True) for _ in range(processes)]
    for proc in spinners:
        proc.start()
    try:
        yield
    finally:
        for proc in spinners:
            proc.terminate()
            proc.join()


def _spin(die_with_parent, parent: int) -> None:
    die_with_parent(parent)
    while True:
        pass


def cmd_error_rates(args) -> int:
    if args.resume and not (args.counted and args.out):
        raise SpikeflopsError("--resume continues a counted table: it needs --counted and --out")
    if args.counted:
        return cmd_counted_error_rates(args)
    from workloads.gpt.case import GPTCase
    from workloads.gpt.workload import prepare
    from workloads.hardware import machine_facts
    from workloads.load import CPU_THREADS, intra_op_threads
    from workloads.profiles import get_profile
    from ..regress.error_rates import measure_error_rates
    from ..regress.rules import load_config
    from ..results.fileio import write_json
    from ..tables import format_table

    sizes = _sizes(args.sizes)
    config = load_config(args.config)
    rule = config.rule_for(MEASURES[args.measure][0])
    budget = args.budget or get_profile("ci").timing_budget_s
    max_rounds = max(args.rounds, args.max_rounds or args.rounds)
    case = GPTCase(args.model_size, args.variant, "float32", "cpu", args.mode, batch=args.batch)

    def say(text: str) -> None:
        print(text, file=sys.stderr, flush=True)

    say(f"spikeflops error-rates: {case.label()}, {len(sizes)} sizes x {args.trials} comparisons x "
        f"{args.rounds}-{max_rounds} rounds x 2 x {budget:g} s: "
        f"{len(sizes) * args.trials * args.rounds * 2 * budget / 60:.0f}"
        f"-{len(sizes) * args.trials * max_rounds * 2 * budget / 60:.0f} min")
    with intra_op_threads(CPU_THREADS), prepare(case, warmup=2) as step, spinning(args.busy):
        table = measure_error_rates(step.run_synced, sizes, args.trials, args.rounds, budget, rule,
                                    config.alpha, config.contended_floor, progress=say, max_rounds=max_rounds,
                                    measure=args.measure)
    table.update(case=case.to_dict(), machine=machine_facts(), threads=CPU_THREADS, busy_processes=args.busy,
                 date=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if args.out:
        write_json(args.out, table)
    rows = [[f"{100 * r['injected']:g}%" + (" (A/A)" if r["injected"] == 0 else ""), str(r["comparisons"]),
             str(r["regressed"]), str(r["undecided"]), str(r["unchanged"] + r["improved"]), str(r["not_judged"]),
             "-" if r["flagged_rate"] is None else
             f"{100 * r['flagged_rate']:.0f}% "
             f"({100 * r['flagged_rate_ci95'][0]:.0f}-{100 * r['flagged_rate_ci95'][1]:.0f}%)",
             "-" if r["cpu_share_median"] is None else f"{r['cpu_share_median']:.2f}",
             f"{r['rounds_mean']:.1f}"] for r in table["rows"]]
    spread = table["aa_spread"]
    print(f"{args.measure} verdict of `spikeflops compare` ({args.rounds}-{max_rounds} rounds of {budget:g} s a "
          f"side, threshold {100 * rule.threshold:g}%, alpha {config.alpha}"
          + (f", {args.busy} spinning processes beside it" if args.busy else "")
          + f") on {case.label()}, step {1e3 * table['step_seconds']:.1f} ms; A/A spread "
          + ("-" if spread is None else f"{100 * spread:.1f}%"))
    print(format_table(["injected", "comparisons", "regressed", "undecided", "unchanged", "not judged",
                        "flagged (Wilson 95%)", "CPU share", "rounds"], rows))
    smallest = table["smallest_detected_at_95"]
    print("smallest slowdown detected in >= 95% of comparisons: "
          + (f"{100 * smallest:g}%" if smallest is not None else "none of those tried"))
    return 0
