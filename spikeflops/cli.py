"""`spikeflops ...`: the command line. Every user error is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys

from workloads.errors import SpikeflopsError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line, not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from . import gpt_commands, run, superspike_commands
    from .regress import commands as regress_commands

    parser = _Parser(prog="spikeflops", description="GPU workload benchmarks: GPT-2 FLOPs/MFU and SuperSpike")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser,
                                metavar="{run,info,gpt,superspike,gate,report,dashboard}")
    run.add_parser(sub)
    info = sub.add_parser("info", help="this machine's facts (GPU, driver, CUDA, torch, pygenn) as JSON")
    info.add_argument("--machine-name", action="store_true",
                      help="print only the machine label (carries the GPU model; used as asv's machine name)")
    info.add_argument("--asv-bench", action="store_true",
                      help="print the `asv run -b` pattern selecting what the SPIKEFLOPS_PROFILE profile runs here")
    info.add_argument("--register-asv-machine", nargs="?", const="", metavar="NAME",
                      help="write this machine (GPU included) into ~/.asv-machine.json under NAME "
                           "(default: the machine label) and print the name")
    info.set_defaults(func=_cmd_info)
    gpt_commands.add_parser(sub)
    superspike_commands.add_parser(sub)
    regress_commands.add_parsers(sub)
    return parser


def _cmd_info(args) -> int:
    import json

    from workloads.hardware import machine_facts, machine_name

    if args.machine_name:
        print(machine_name())
        return 0
    if args.register_asv_machine is not None:
        from .asvmachine import register

        name, entry = register(args.register_asv_machine or None)
        print(name)
        print(f"registered with asv: {entry}", file=sys.stderr)
        return 0
    if args.asv_bench:
        from workloads.cases import get_profile

        from .asvbench import asv_bench_regex

        print(asv_bench_regex(get_profile()))
        return 0
    json.dump({"machine_name": machine_name(), **machine_facts()}, sys.stdout, indent=2)
    print()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except SpikeflopsError as exc:
        print(f"spikeflops: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("spikeflops: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
