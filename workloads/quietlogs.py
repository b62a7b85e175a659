"""Native libraries' own log lines kept out of the tool's output.

torch's profiler (kineto) writes ``USDT:... profiler_start`` and ``profiler_stop`` lines (and, in older
versions, ``STAGE:... Completed Stage``) straight to file descriptor 2 from C++, around every profiled block,
whatever Python's logging says. They land between a command's progress lines and tables. This filters
them at the file descriptor for the length of a block and passes every other line on.
"""

from __future__ import annotations

import contextlib
import os
import sys
import tempfile

NATIVE_LOG_PREFIXES = ("USDT:", "STAGE:")


@contextlib.contextmanager
def without_native_logs(prefixes: tuple[str, ...] = NATIVE_LOG_PREFIXES):
    """Within the block, file descriptor 2 goes to a temporary file; after it, the lines that do not start
    with ``prefixes`` go on to the real stderr, in order."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as sink:
        os.dup2(sink.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().decode(errors="replace").splitlines(keepends=True)
                    if not line.startswith(prefixes)]
            if kept:
                sys.stderr.write("".join(kept))
                sys.stderr.flush()
