"""The Python an asv run used, as its results file records it: asv names a `--python=same` run's interpreter by
its path, which may or may not carry the version."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

_VERSION_IN_PATH = re.compile(r"python(\d+\.\d+)")
_VERSION = re.compile(r"^\d+\.\d+$")


def python_version(recorded: str) -> str | None:
    """The major.minor version of an interpreter as asv recorded it ("3.11" or a path), None if unknown."""
    if _VERSION.match(recorded):
        return recorded
    found = _VERSION_IN_PATH.findall(Path(recorded).name) or _VERSION_IN_PATH.findall(recorded)
    return found[-1] if found else None


def interpreter_version(data: dict) -> str | None:
    """major.minor of the interpreter a --python=same run recorded by its path: from the path, else by asking
    it where it still exists here (a venv's `bin/python` names no version)."""
    recorded = (data.get("params") or {}).get("python") or data.get("python")
    if not isinstance(recorded, str):
        return None
    version = python_version(recorded)
    if version is None and Path(recorded).is_file():
        try:
            proc = subprocess.run([recorded, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                                  capture_output=True, text=True, timeout=30)
            version = proc.stdout.strip() if proc.returncode == 0 else None
        except (OSError, subprocess.SubprocessError):
            version = None
    return version
