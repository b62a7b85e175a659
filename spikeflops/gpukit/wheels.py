"""The wheels that travel with the kit to a bare GPU machine (no network there): preparing them here, with
pip and a package index, and installing them there, with neither.

The machine's image has torch, pytest and pytest-benchmark but no asv, thop or pygenn; these are what
it lacks for the kit's stages, each pinned to the version installed here (the one the tests ran), for
the machine's Python (3.12). pygenn is on no index: build its wheel from GeNN's source (docs/gpu-kit.md).
"""

from __future__ import annotations

import importlib.metadata
import re
import subprocess
import sys
from pathlib import Path

from workloads.errors import SpikeflopsError

# what the kit's stages import that the image lacks: asv (and what it imports), thop; GeNN's build and
# runtime needs (pkgconfig, deprecated) for a pygenn built there from carried source
KIT_WHEELS = ("asv", "asv_runner", "json5", "pympler", "virtualenv", "distlib", "platformdirs",
              "python-discovery", "importlib_metadata", "lazy_importer", "thop", "pkgconfig", "deprecated")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64",
             "manylinux1_x86_64", "any")


def pinned(name: str) -> str:
    """``name==<the version installed here>``, or the bare name where it is not installed."""
    try:
        return f"{name}=={importlib.metadata.version(name)}"
    except importlib.metadata.PackageNotFoundError:
        return name


def distribution(wheel: Path) -> str:
    """A wheel file's project name, normalised (``Pympler-1.1-py3-none-any.whl`` -> ``pympler``)."""
    return re.sub(r"[-_.]+", "-", wheel.name.split("-")[0]).lower()


def check_one_version_each(folder: Path) -> None:
    """Two wheels of one project stop a whole no-deps install: refuse the folder, naming them."""
    seen: dict[str, list[str]] = {}
    for wheel in sorted(folder.glob("*.whl")):
        seen.setdefault(distribution(wheel), []).append(wheel.name)
    twice = [names for names in seen.values() if len(names) > 1]
    if twice:
        raise SpikeflopsError(f"{folder}: more than one wheel of a project ({', '.join(twice[0])}); keep one")


def prepare(folder: Path, python_version: str, say) -> list[Path]:
    """Download the kit's wheels for ``python_version`` on x86-64 Linux into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    specs = [pinned(n) for n in KIT_WHEELS]
    say(f"downloading {len(specs)} wheels for Python {python_version} into {folder}: {' '.join(specs)}")
    argv = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
            "--python-version", python_version, "--implementation", "cp", "-d", str(folder)]
    for platform in PLATFORMS:
        argv += ["--platform", platform]
    proc = subprocess.run(argv + specs, capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        raise SpikeflopsError(f"pip download failed: {last}")
    check_one_version_each(folder)
    return sorted(folder.glob("*.whl"))


def install(folder: Path, site: Path, say) -> list[str]:
    """The carried wheels into ``site`` (no index, no dependencies: a bare machine reaches nothing)."""
    wheels = sorted(folder.glob("*.whl"))
    if not wheels:
        raise SpikeflopsError(f"{folder}: no wheels to install (see docs/gpu-kit.md: preparing the wheels)")
    check_one_version_each(folder)
    say(f"installing {len(wheels)} carried wheel{'s' if len(wheels) != 1 else ''} into {site}")
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile",
                           "--no-cache-dir", "--upgrade", "--target", str(site), *map(str, wheels)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        last = (proc.stderr.strip() or proc.stdout.strip() or "(no output)").splitlines()[-1]
        raise SpikeflopsError(f"the carried wheels did not install: {last}")
    return [w.name for w in wheels]
