"""Register this machine with asv under a name that carries its GPU, with the GPU in its facts.

``asv machine --yes`` names a machine after its host and records no GPU; results of two
GPU models on one host name would then mix. This writes asv's own ~/.asv-machine.json
entry (asv keeps unknown keys, so "gpu" travels into every results file's params).
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.hardware import machine_facts, machine_name
from .resultsio import write_json


def asv_machine_file() -> Path:
    return Path(os.environ.get("ASV_MACHINE_FILE") or Path.home() / ".asv-machine.json")


def register(name: str | None = None) -> tuple[str, dict]:
    facts = machine_facts()
    name = name or machine_name()
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
    write_json(path, data)
    return name, entry
