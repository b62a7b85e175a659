"""asv never installs torch: its per-commit virtualenv gets the project wheel without dependencies, and an
environment that cannot see torch (a user whose torch lives in a venv or conda env, not in the base
interpreter) stops at install with one line saying to use ``--python=same``, instead of pulling the newest
CUDA build of torch (several GB)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from spikeflops.envcheck import missing_packages

pytestmark = pytest.mark.e2e          # the end-to-end tier (pyproject.toml markers)

ROOT = Path(__file__).resolve().parents[1]


def test_the_install_command_never_resolves_dependencies():
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    pip_lines = [c for c in conf["build_command"] + conf["install_command"] if "pip " in c]
    assert pip_lines and all("--no-deps" in c for c in pip_lines), pip_lines
    # refused before anything is built or installed: the check is the first build step, run from the source
    assert "envcheck.py" in conf["build_command"][0], conf["build_command"]
    assert any("spikeflops.envcheck" in c for c in conf["install_command"])


def test_this_environment_passes_the_check():
    assert missing_packages() == []


@pytest.mark.slow
def test_an_asv_environment_without_torch_stops_at_install_and_downloads_nothing(tmp_path):
    asv = shutil.which("asv")
    assert asv, "asv is a test dependency"
    conf = json.loads((ROOT / "asv.conf.json").read_text())
    # what a venv user gets: asv's virtualenv from the base interpreter, whose site-packages lack torch
    conf.update(repo=str(ROOT), benchmark_dir=str(ROOT / "benchmarks"), env_dir=str(tmp_path / "env"),
                results_dir=str(tmp_path / "results"), html_dir=str(tmp_path / "html"),
                pythons=[f"{sys.version_info.major}.{sys.version_info.minor}"],
                matrix={"env": {"VIRTUALENV_SYSTEM_SITE_PACKAGES": "false"}})
    (tmp_path / "asv.conf.json").write_text(json.dumps(conf))
    env = {**os.environ, "HOME": str(tmp_path)}
    subprocess.run([asv, "machine", "--yes", "--machine", "asv-env-test"], cwd=ROOT, env=env,
                   capture_output=True, text=True, timeout=120)
    proc = subprocess.run([asv, "run", "--config", str(tmp_path / "asv.conf.json"), "--quick",
                           "--machine", "asv-env-test", "-b", "GPTFlops", "HEAD^!"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    output = proc.stdout + proc.stderr
    assert "cannot see torch" in output and "--python=same" in output, output[-3000:]
    installed = list((tmp_path / "env").rglob("site-packages/torch"))
    assert installed == [], installed
    assert not list((tmp_path / "results").rglob("*-*.json")), "nothing may be recorded from a broken env"


def test_tox_never_resolves_torch():
    import configparser

    tox = configparser.ConfigParser(interpolation=None)
    tox.read(ROOT / "tox.ini")
    env = tox["testenv"]
    assert env.getboolean("skip_install") and env.getboolean("sitepackages")
    assert "torch" not in env.get("deps", "").lower()
    pre = [line.strip() for line in env["commands_pre"].strip().splitlines()]
    assert "envcheck.py tox" in pre[0], pre                 # refused before pip installs anything
    assert not any("torch" in line for line in pre)
    assert all("--no-deps" in line for line in pre if "pip install" in line and ("thop" in line or "-e ." in line))


def test_the_check_names_the_tool_and_what_to_do_instead(monkeypatch, capsys):
    import spikeflops.envcheck as envcheck

    monkeypatch.setattr(envcheck, "missing_packages", lambda names=envcheck.REQUIRED: ["torch"])
    for tool, advice in (("asv", "asv run --python=same"), ("tox", "python -m pytest")):
        assert envcheck.main([tool]) == 1
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and f"this {tool} environment" in err and advice in err


def test_the_early_check_asks_only_for_torch(monkeypatch):
    import spikeflops.envcheck as envcheck

    seen = []
    monkeypatch.setattr(envcheck, "missing_packages", lambda names=envcheck.REQUIRED: seen.append(names) or [])
    assert envcheck.main(["tox", "--before-install"]) == 0 and envcheck.main(["asv"]) == 0
    assert seen == [("torch",), envcheck.REQUIRED]
