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
    import importlib

    parser = _Parser(prog="spikeflops", description="GPU workload benchmarks: GPT-2 FLOPs/MFU and SuperSpike")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from .commands import COMMANDS

    for name in COMMANDS:
        importlib.import_module(f"{__package__}.commands.{name}").add_parser(sub)
    sub.metavar = "{" + ",".join(sub.choices) + "}"          # the usage line lists what is registered
    return parser


class Stopped(KeyboardInterrupt):
    """SIGTERM or SIGHUP (a CI cancel, `timeout`, a closed terminal): unwound like Ctrl-C, so every
    worktree, child process and temporary folder is cleaned up on the way out."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _stop(signum, frame):
    raise Stopped(signum)


def _catch_stop_signals() -> dict:
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        return {}
    before = {}
    for sig in (signal.SIGTERM, getattr(signal, "SIGHUP", None)):
        if sig is not None:
            before[sig] = signal.signal(sig, _stop)
    return before


def main(argv: list[str] | None = None) -> int:
    import signal

    from .textsafe import PrintableStream

    try:                        # a broken extra workload table is one line, even for --help
        parser = build_parser()
    except SpikeflopsError as exc:
        print(f"spikeflops: error: {exc}", file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    before = _catch_stop_signals()
    # everything printed may carry text from results files, file names or git: shown, never obeyed
    streams = sys.stdout, sys.stderr
    sys.stdout, sys.stderr = PrintableStream(sys.stdout), PrintableStream(sys.stderr)
    try:
        return int(args.func(args) or 0)
    except SpikeflopsError as exc:
        print(f"spikeflops: error: {exc}", file=sys.stderr)
        return 2
    except Stopped as exc:
        print(f"spikeflops: stopped by {signal.Signals(exc.signum).name}", file=sys.stderr)
        return 128 + exc.signum
    except KeyboardInterrupt:
        print("spikeflops: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        sys.stdout, sys.stderr = streams
        for sig, handler in before.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
