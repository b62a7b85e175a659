"""Run by asv after it installs the project wheel (without dependencies) into a benchmark environment.

asv's virtualenv sees the *base* interpreter's site-packages. Where torch lives in a venv or a
conda env instead, that environment has no torch, and installing the wheel with its dependencies
would pull the newest torch build (several GB of CUDA libraries). So the wheel goes in with
``--no-deps`` and this check ends the install with one line saying what to do instead.
"""

from __future__ import annotations

import importlib.util
import sys

REQUIRED = ("torch", "thop", "numpy", "matplotlib")


def missing_packages() -> list[str]:
    return [name for name in REQUIRED if importlib.util.find_spec(name) is None]


def main() -> int:
    missing = missing_packages()
    if missing:
        print(f"spikeflops: error: this asv environment ({sys.prefix}) cannot see {', '.join(missing)}; "
              "spikeflops never installs torch for asv: run `asv run --python=same ...` inside the "
              "environment that has torch (a venv, a conda env), or install torch into the base "
              "interpreter that asv's virtualenv inherits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
