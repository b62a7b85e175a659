"""Register this machine with asv under a name that carries its GPU, with the GPU in its facts.

``asv machine --yes`` names a machine after its host and records no GPU; results of two
GPU models on one host name would then mix. This writes asv's own ~/.asv-machine.json
entry (asv keeps unknown keys, so "gpu" travels into every results file's params).
"""

from __future__ import annotations

import json
import os
import platform
import re
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.hardware import machine_facts, machine_name
from .results.fileio import write_json


def asv_machine_file() -> Path:
    return Path(os.environ.get("ASV_MACHINE_FILE") or Path.home() / ".asv-machine.json")


# asv uses the machine name as a folder under its results and as a key beside "version" in its machine file
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,99}")


def check_machine_name(name: str) -> str:
    """``name`` if asv can use it as a folder and a key; a one-line error for '../x', 'version' and the like."""
    if not _NAME.fullmatch(name) or name in ("version",) or ".." in name:
        raise SpikeflopsError(f"asv machine name {name!r}: use letters, digits and . _ + - (not a path, not 'version')")
    return name


def register(name: str | None = None) -> tuple[str, dict]:
    facts = machine_facts()
    name = check_machine_name(name or machine_name())
    entry = {"machine": name, "arch": platform.machine(), "cpu": facts["cpu"],
             "num_cpu": str(facts["cpu_count"]), "os": f"{platform.system()} {platform.release()}",
             "ram": str(facts["memory_bytes"] or ""), "gpu": facts["gpu"] or "none"}
    path = asv_machine_file()
    data = {"version": 1}
    if path.exists():
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise SpikeflopsError(f"{path}: cannot read asv's machine file ({exc}); fix or remove it") from None
        if not isinstance(data, dict):
            raise SpikeflopsError(f"{path}: not an asv machine file")
    data[name] = entry
    # a symlinked machine file (dotfiles kept elsewhere) is written where it points, not replaced by a file
    write_json(path.resolve() if path.is_symlink() else path, data)
    return name, entry
