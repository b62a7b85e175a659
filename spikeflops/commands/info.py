"""`spikeflops info`: this machine's facts, its asv machine name and the `asv run -b` pattern."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    info = sub.add_parser("info", help="this machine's facts (GPU, driver, CUDA, torch, pygenn) as JSON")
    info.add_argument("--machine-name", action="store_true",
                      help="print only the machine label (carries the GPU model; used as asv's machine name)")
    info.add_argument("--asv-bench", action="store_true",
                      help="print the `asv run -b` pattern selecting what the SPIKEFLOPS_PROFILE profile runs here")
    info.add_argument("--register-asv-machine", nargs="?", const="", metavar="NAME",
                      help="write this machine (GPU included) into ~/.asv-machine.json under NAME "
                           "(default: the machine label) and print the name")
    info.set_defaults(func=cmd_info)


def cmd_info(args) -> int:
    import json

    from workloads.hardware import machine_facts, machine_name

    if args.machine_name:
        print(machine_name())
        return 0
    if args.register_asv_machine is not None:
        from ..asvmachine import register

        name, entry = register(args.register_asv_machine or None)
        print(name)
        print(f"registered with asv: {entry}", file=sys.stderr)
        return 0
    if args.asv_bench:
        from workloads.profiles import get_profile

        from ..asvbench import asv_bench_regex

        print(asv_bench_regex(get_profile()))
        return 0
    json.dump({"machine_name": machine_name(), **machine_facts()}, sys.stdout, indent=2)
    print()
    return 0
