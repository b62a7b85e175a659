"""Every git call of spikeflops: the commit a run measured, one-line errors, and a commit checked out beside the
repository (compare, bisect)."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

from workloads.errors import SpikeflopsError


def git_commit(repo: Path | None = None) -> tuple[str | None, bool]:
    """(HEAD's hash, whether tracked files have uncommitted edits) of ``repo`` (default: the working directory's
    checkout), or (None, False) outside a git checkout."""
    where = ["-C", str(repo)] if repo is not None else []
    try:
        head = subprocess.run(["git", *where, "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", *where, "status", "--porcelain", "--untracked-files=no"], capture_output=True,
                               text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None, False
    if head.returncode != 0:
        return None, False
    return head.stdout.strip(), bool(dirty.stdout.strip())


def git(repo: Path, *args: str) -> str:
    """``git -C repo args``'s output; a failure is one line naming the command."""
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True, timeout=120)
    if proc.returncode != 0:
        raise SpikeflopsError(f"git {' '.join(args)}: {(proc.stderr.strip().splitlines() or ['failed'])[-1]}")
    return proc.stdout.strip()


def resolve(repo: Path, rev: str) -> str:
    return git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")


@contextlib.contextmanager
def worktree(repo: Path, commit: str, where: Path):
    """``commit`` checked out (detached) at ``where`` while the block runs, removed after it. A relative
    ``where`` is this process's, not the repository's (git -C would read it against the repository)."""
    where = Path(where).resolve()
    git(repo, "worktree", "add", "--detach", "-f", str(where), commit)
    try:
        yield where
    finally:
        subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)


def prune_own_worktrees(repo: Path, prefix: str) -> list[str]:
    """Unregister the worktrees a killed command of ours left behind: those under a temporary folder named
    ``prefix*`` whose folder is gone (its scratch folder was pruned). Every other worktree of the repository,
    the user's included (even one whose folder is briefly absent), is left as it is: never a repository-wide
    ``git worktree prune``."""
    import tempfile

    temp = Path(tempfile.gettempdir()).resolve()
    removed = []
    for line in git(repo, "worktree", "list", "--porcelain").splitlines():
        if not line.startswith("worktree "):
            continue
        where = Path(line[len("worktree "):])
        ours = any(parent.parent == temp and parent.name.startswith(prefix) for parent in where.parents)
        if ours and not where.exists():
            subprocess.run(["git", "-C", str(repo), "worktree", "remove", "--force", str(where)], capture_output=True)
            removed.append(str(where))
    return removed
