"""Run by asv (``envcheck asv``) and tox (``envcheck tox``): first from the source tree before they build or
install anything (``--before-install``: torch only), then after they install the project without
dependencies into an environment of their own.

Their virtualenvs see the *base* interpreter's site-packages. Where torch lives in a venv or a
conda env instead, that environment has no torch, and installing the wheel with its dependencies
would pull the newest torch build (several GB of CUDA libraries). So the wheel goes in with
``--no-deps`` and this check ends the install with one line saying what to do instead.
"""

from __future__ import annotations

import importlib.util
import sys

REQUIRED = ("torch", "thop", "numpy", "matplotlib")
# before anything is installed only torch must already be there: the rest the tool installs itself
BEFORE_INSTALL = ("torch",)


def missing_packages(names: tuple[str, ...] = REQUIRED) -> list[str]:
    return [name for name in names if importlib.util.find_spec(name) is None]


INSTEAD = {"asv": "run `asv run --python=same ...` inside the environment that has torch (a venv, a conda env)",
           "tox": "run `python -m pytest` inside the environment that has torch (a venv, a conda env)"}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    tool = argv[0] if argv and argv[0] in INSTEAD else "asv"
    missing = missing_packages(BEFORE_INSTALL if "--before-install" in argv else REQUIRED)
    if missing:
        print(f"spikeflops: error: this {tool} environment ({sys.prefix}) cannot see {', '.join(missing)}; "
              f"spikeflops never installs torch for {tool}: {INSTEAD[tool]}, or install torch into the base "
              f"interpreter that {tool}'s virtualenv inherits", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
