"""Results files, the ground floor of the tool: their schema (``schema``: every writer builds a ``RunFile``), the
reader of asv's, pytest-benchmark's and the run files (``records``), atomic writes and one-line errors
(``fileio``), a metric's history over commits (``history``), and what `spikeflops keep` commits (``keep``)."""

from .schema import MOST_PARTS, RUN_FORMAT, ResultEntry, RunFile  # noqa: F401 - the package's interface
