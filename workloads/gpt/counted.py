"""The GPT step that the counted family counts (``workloads.counting`` runs it under callgrind): the model is
built and warmed up outside the instrumented span; ``(step, close)`` as every counted factory returns."""

from __future__ import annotations


def step(fields: dict):
    """One synchronised forward or training step of ``GPTCase(**fields)``."""
    from .case import GPTCase
    from .workload import prepare

    ctx = prepare(GPTCase(**fields), warmup=1)
    prepared = ctx.__enter__()
    return prepared.run_synced, (lambda: ctx.__exit__(None, None, None))
