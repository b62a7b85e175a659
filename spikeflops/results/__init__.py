"""Results files: their schema (``schema``), in one place for every writer and the reader."""

from .schema import MOST_PARTS, RUN_FORMAT, ResultEntry, RunFile  # noqa: F401 - the package's interface
