"""Text from outside (results files, file names, git) made safe to show: a terminal control sequence or a
bidirectional override in a machine name must not clear a screen, retitle a window or hide a line."""

from __future__ import annotations

import io
import re

# C0 controls but tab and newline, DEL, C1 controls, and the Unicode marks that reorder or hide text
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def middle_cut(text: str, most: int) -> str:
    """``text`` within ``most`` characters, its middle cut: a name's start and end tell it apart."""
    if len(text) <= most:
        return text
    head = most // 3
    return text[:head] + "..." + text[-(most - head - 3):]


def printable(text: str) -> str:
    """``text`` with every control character shown as its escape (``\\x1b``, ``\\u202e``)."""
    return _UNSAFE.sub(_escape, text)


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


class PrintableStream(io.TextIOBase):
    """A text stream that shows control characters as escapes, over the stream it wraps."""

    def __init__(self, raw):
        self._raw = raw

    def write(self, text: str) -> int:
        self._raw.write(printable(text))
        return len(text)

    def flush(self) -> None:
        self._raw.flush()

    def isatty(self) -> bool:
        return self._raw.isatty()

    def fileno(self) -> int:
        return self._raw.fileno()

    @property
    def encoding(self):
        return getattr(self._raw, "encoding", "utf-8")
