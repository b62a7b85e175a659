"""What a stopped command left behind: processes (found by a tag in their environment, so children that
were reparented after their parent died are found too) and files."""

from __future__ import annotations

import hashlib
import os
import time
import uuid
from pathlib import Path

TAG_VARIABLE = "SPIKEFLOPS_TEST_TAG"


def new_tag() -> dict:
    """Environment entries that mark every process a command starts (environments are inherited)."""
    return {TAG_VARIABLE: uuid.uuid4().hex}


def tagged_alive(tag: dict) -> list[int]:
    """Live (not zombie) processes carrying ``tag``, other than this one."""
    needle = f"{TAG_VARIABLE}={tag[TAG_VARIABLE]}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if needle not in f.read().split(b"\0"):
                    continue
            with open(f"/proc/{entry}/status") as f:
                if "zombie" in f.read().lower():
                    continue
        except OSError:
            continue
        found.append(int(entry))
    return found


def survivors(tag: dict, grace_s: float = 5.0) -> list[str]:
    """Command lines of tagged processes still alive after ``grace_s`` (a process exiting takes a moment)."""
    deadline = time.monotonic() + grace_s
    while True:
        alive = tagged_alive(tag)
        if not alive or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    lines = []
    for pid in alive:
        try:
            lines.append(f"{pid}: " + Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:200])
        except OSError:
            pass
    return lines


def wait_for_descendant(tag: dict, needle: str, timeout_s: float = 120.0) -> None:
    """Until a tagged process whose command line holds ``needle`` runs (the stage worth interrupting)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for pid in tagged_alive(tag):
            try:
                if needle in Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode():
                    return
            except OSError:
                pass
        time.sleep(0.2)
    raise AssertionError(f"no process running {needle!r} within {timeout_s:.0f} s")


def digest_tree(folder: Path) -> dict:
    """Relative path -> SHA-1 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha1(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}
