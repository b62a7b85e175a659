"""`spikeflops info`: this machine's facts and its asv machine name."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    info = sub.add_parser("info", help="this machine's facts (GPU, driver, CUDA, torch, pygenn) as JSON")
    info.add_argument("--machine-name", action="store_true",
                      help="print only the machine label (carries the GPU model; used as asv's machine name)")
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
        # the facts asv records, one short line (the whole entry is ~160 columns)
        facts = ", ".join(f"{k} {entry[k]}" for k in ("cpu", "num_cpu", "gpu") if entry.get(k))
        print(f"registered {name} in asv's machine file ({facts})", file=sys.stderr)
        return 0
    json.dump({"machine_name": machine_name(), **machine_facts()}, sys.stdout, indent=2)
    print()
    return 0
