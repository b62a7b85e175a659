"""`spikeflops ...`: the command line. Every user error is one line on stderr and exit 2."""

from __future__ import annotations

import argparse
import sys

from workloads.errors import SpikeflopsError


class _Parser(argparse.ArgumentParser):
    """argparse, but a bad flag is one line, not a usage dump."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


# Every command, in the order `spikeflops --help` lists them: each module registers itself with
# add_parser(subparsers) and imports what its work needs (torch, pygenn) only when it runs.
COMMAND_MODULES = ("spikeflops.run", "spikeflops.info_command", "spikeflops.gpt_commands",
                   "spikeflops.superspike_commands", "spikeflops.regress.commands", "spikeflops.regress.report",
                   "spikeflops.regress.error_rates", "spikeflops.dashboard")


def build_parser() -> argparse.ArgumentParser:
    import importlib

    parser = _Parser(prog="spikeflops", description="GPU workload benchmarks: GPT-2 FLOPs/MFU and SuperSpike")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_parser(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"          # the usage line lists what is registered
    return parser


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
