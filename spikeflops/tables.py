"""Plain-text tables for terminals and markdown tables for pull-request comments."""

from __future__ import annotations

import re


TERMINAL_COLUMNS = 120       # a terminal table's lines wrap their last column to fit this


def terminal_columns(stream=None) -> int | None:
    """TERMINAL_COLUMNS when ``stream`` (stdout) is a terminal; None (no wrapping) when it is a file or a pipe,
    where a line kept whole is what grep and a CI log want."""
    import sys

    return TERMINAL_COLUMNS if (stream or sys.stdout).isatty() else None


def fit_prose(text: str, columns: int | None = -1, stream=None) -> str:
    """Prose lines wrapped to the terminal (``columns`` -1: decide from ``stream``, stdout), each continuation
    indented two spaces past its line's own indent and no word cut (a path stays whole to copy); kept whole in a
    file or a pipe, as tables are."""
    import textwrap

    columns = terminal_columns(stream) if columns == -1 else columns
    if columns is None:
        return text
    out = []
    for line in text.split("\n"):
        indent = " " * (len(line) - len(line.lstrip()) + 2)
        out += [line] if len(line) <= columns else textwrap.wrap(
            line, columns, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
    return "\n".join(out)


def format_table(headers: list[str], rows: list[list[object]], markdown: bool = False,
                 columns: int | None = -1) -> str:
    """A table; in a terminal (``columns`` -1: decide from stdout) the last column wraps to ``columns``."""
    columns = terminal_columns() if columns == -1 else columns
    width = len(headers)                    # a short row (a failed case's) is padded, never an IndexError
    cells = [[str(h) for h in headers]] + [(["" if c is None else str(c) for c in row] + [""] * width)[:width]
                                           for row in rows]
    if markdown:                            # a name read from a results file must not add headings or HTML
        cells = [[markdown_cell(c) for c in row] for row in cells]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    # in a terminal the last column (a note, a range) wraps under itself rather than run past the screen
    indent = sum(widths[:-1]) + 2 * (width - 1)
    last = max((columns or 0) - indent, 20)
    if not markdown and columns is not None and widths[-1] > last:
        widths[-1] = max(last, len(cells[0][-1]))

    def line(row):
        if markdown:
            parts = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row, widths)]
            return "| " + " | ".join(parts) + " |"
        head = [c.rjust(w) if _numeric(c) else c.ljust(w) for c, w in zip(row[:-1], widths[:-1])]
        tail = _wrap(row[-1], widths[-1])
        first = "  ".join(head + [tail[0].rjust(widths[-1]) if _numeric(tail[0]) else tail[0]]).rstrip()
        return "\n".join([first] + [" " * indent + more for more in tail[1:]])

    sep = ("|" + "|".join("-" * (w + 2) for w in widths) + "|") if markdown else "  ".join("-" * w for w in widths)
    return "\n".join([line(cells[0]), sep] + [line(r) for r in cells[1:]])


def _wrap(text: str, width: int) -> list[str]:
    import textwrap

    return textwrap.wrap(text, width, break_long_words=True, break_on_hyphens=False) or [""]


# brackets (links, images), backticks (code), asterisks and tildes (emphasis): a name's underscores and
# parentheses stay as they are, readable and searchable, since without a bracket they make no link
_MARKUP = re.compile(r"([\\`*\[\]!~|])")
_LINKABLE = re.compile(r"(?i)(https?|ftp|javascript|data|mailto|file|www)(?=[:.])")


def markdown_cell(text: str) -> str:
    """``text`` (from a results file: anyone's words) as inert markdown: no HTML, no link or image, no
    mention, no code span or emphasis, no column or line break, no heading or list start. Marks are escaped;
    a mention or an address is broken by a zero-width space, which a reader does not see."""
    import html

    from .textsafe import printable

    text = " ".join(printable(str(text)).split())
    text = _LINKABLE.sub(lambda m: m[0][0] + "\u200b" + m[0][1:], text)
    text = html.escape(text, quote=False).replace("@", "@\u200b")
    text = _MARKUP.sub(r"\\\1", text)
    return "\\" + text if text[:1] in "#>-+=" and text else text


def _numeric(text: str) -> bool:
    try:
        float(text.rstrip("%x").replace(",", ""))
        return True
    except ValueError:
        return False


def si(value: float | None, unit: str = "", digits: int = 3) -> str:
    """1.23e12 -> '1.23 T' (+ unit)."""
    if value is None:
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.{digits}g} {prefix}{unit}".rstrip()
    return f"{value:.{digits}g} {unit}".rstrip()


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"
