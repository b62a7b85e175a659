"""Reading and writing result files: atomic writes, one-line errors on unreadable input."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from workloads.errors import SpikeflopsError
from workloads.isolate import FINISHED_FILE, OWNER_FILE, owner_id, prune_abandoned


def write_json(path: str | os.PathLike, data) -> Path:
    """Write ``data`` as JSON via a temporary file and a rename: a crash never leaves half a file."""
    return write_text(path, json.dumps(data, indent=2, sort_keys=False, default=_jsonable) + "\n")


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` atomically: a hidden temporary file beside ``path``, then a rename. The file gets
    the mode an ordinary ``open()`` would give (0666 less the umask), not mkstemp's private 0600."""
    path = check_writable(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise SpikeflopsError(f"{path}: cannot write ({exc.strerror or exc})") from None
    try:
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "w") as f:
            _fill(f, text)
        os.replace(tmp, path)
    except OSError as exc:                  # a full disk, a quota: the old file stays as it was
        Path(tmp).unlink(missing_ok=True)
        raise SpikeflopsError(f"{path}: cannot write ({exc.strerror or exc}); the previous file is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def _fill(f, text: str) -> None:
    f.write(text)               # apart, so a test can fill the disk


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """A new temporary folder that is kept when the block succeeds (it holds what a command reports; marked
    finished, it is never pruned) and removed when it fails, is refused or is interrupted: nothing is left
    behind by a command that ended early. A command killed by SIGKILL cannot remove its own: the unfinished
    folders of dead owners are pruned here first."""
    import shutil

    prune_abandoned(prefix)
    path = Path(tempfile.mkdtemp(prefix=prefix))
    (path / OWNER_FILE).write_text(owner_id(os.getpid()) or str(os.getpid()))
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise
    # finished: the command told the user where this is, so no later prune may take it
    (path / FINISHED_FILE).write_text("finished: kept until you remove it\n")


@contextlib.contextmanager
def staged_folder(parent: Path):
    """A hidden folder inside ``parent`` to build an output in; removed when the block ends, however it ends."""
    import shutil

    try:
        stage = Path(tempfile.mkdtemp(prefix=".staging-", dir=parent))
    except OSError as exc:
        raise SpikeflopsError(f"{parent}: cannot write ({exc.strerror or exc})") from None
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def swap_in(stage: Path, out: Path, names: tuple[str, ...]) -> None:
    """Move ``names`` (files or folders) from ``stage`` over their namesakes in ``out`` with the stop
    signals held back, so a Ctrl-C or SIGTERM lands before or after the swap, never halfway through it."""
    import shutil
    import signal

    stops = {signal.SIGINT, signal.SIGTERM, getattr(signal, "SIGHUP", signal.SIGTERM)}
    held = signal.pthread_sigmask(signal.SIG_BLOCK, stops)
    try:
        for name in names:
            new, old = stage / name, out / name
            if new.is_dir() and old.is_dir():
                retired = stage / f".retired-{name}"
                os.replace(old, retired)
                os.replace(new, old)
                shutil.rmtree(retired, ignore_errors=True)
            else:
                os.replace(new, old)
    except OSError as exc:
        raise SpikeflopsError(f"{out}: cannot write ({exc.strerror or exc})") from None
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, held)


def save_json(path: str | os.PathLike, data, claimed: bool = False) -> Path:
    """write_json for a command's results, measured at a cost: when the file cannot be written (a full disk,
    a quota), a name taken with claim_new is given back (no empty file is left to break later readers) and
    the data goes to the system's temp folder instead; the one-line error names both."""
    try:
        return write_json(path, data)
    except SpikeflopsError as exc:
        release_claim(path, claimed)
        rescue = _rescue(Path(path), data)
        where = f"; what was measured is in {rescue}" if rescue else "; it could not be saved anywhere else either"
        raise SpikeflopsError(f"{exc}{where}") from None


def release_claim(path: str | os.PathLike, claimed: bool) -> None:
    """Remove the empty placeholder claim_new made for ``path`` (never a file with something in it)."""
    path = Path(path)
    try:
        if claimed and path.is_file() and path.stat().st_size == 0:
            path.unlink()
    except OSError:
        pass


def _rescue(path: Path, data) -> Path | None:
    try:
        fd, rescue = tempfile.mkstemp(prefix=f"{path.stem}-", suffix=path.suffix or ".json")
        with os.fdopen(fd, "w") as f:
            f.write(json.dumps(data, indent=2, default=_jsonable) + "\n")
        return Path(rescue)
    except OSError:
        return None


# Written into every folder a command fills and replaces (a report, a published dashboard): the manifest of
# every file the command wrote there. A later run replaces the folder only while it holds nothing else; the
# marker alone grants nothing (it is one `touch` away).
OUTPUT_MARKER = ".spikeflops-output"
MANIFEST_FORMAT = "spikeflops-output/2"


def claim_output_folder(path: str | os.PathLike, option: str) -> Path:
    """``path`` as a folder a command may fill and replace: new, empty, or holding exactly the files its
    manifest says spikeflops wrote. Refused, marker or not: a symlink, the current folder or one above it, a
    git checkout, a folder above a checkout or holding one anywhere below, a folder holding tracked files,
    and any file the manifest does not name (a user's notes beside a dashboard). Made (not yet marked)
    before any work, so a mistyped output folder (``.``, ``..``, ``results``) costs nothing."""
    path = Path(path)
    where = f"{option} {path}"
    if path.is_symlink():
        raise SpikeflopsError(f"{where}: is a symbolic link; give a real folder")
    if path.exists() and not path.is_dir():
        raise SpikeflopsError(f"{where}: exists and is not a folder")
    full = path.resolve()
    here = Path.cwd().resolve()
    if full == here or full in here.parents:
        raise SpikeflopsError(f"{where}: is the current folder or holds it; give a folder of its own")
    checkout = _checkout_of(full)
    if (full / ".git").exists() or (checkout is not None and full in (checkout, *checkout.parents)):
        raise SpikeflopsError(f"{where}: is a git checkout or holds one; give a folder of its own")
    if path.is_dir():
        if _holds_checkout(full):
            raise SpikeflopsError(f"{where}: holds a git checkout below it; give a folder of its own")
        if _tracked_files(full, checkout):
            raise SpikeflopsError(f"{where}: holds files tracked by git; give a folder of its own")
        foreign = _not_written_by_us(full)
        if foreign:
            shown = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
            raise SpikeflopsError(f"{where}: holds files spikeflops did not write ({shown}); give a new or empty "
                                  "folder (nothing was deleted)")
    try:                        # marked by the command when its output is swapped in whole, not before
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikeflopsError(f"{where}: cannot be written ({exc.strerror or exc})") from None
    return path


def _files_below(folder: Path) -> list[str]:
    out = []
    for base, dirs, files in os.walk(folder):
        rel = Path(base).relative_to(folder)
        out += [str(rel / name) if str(rel) != "." else name for name in files + [d for d in dirs
                                                                                 if os.path.islink(Path(base) / d)]]
    return sorted(out)


def _not_written_by_us(folder: Path) -> list[str]:
    """The files in ``folder`` that its manifest does not name (all of them when there is no manifest)."""
    present = [name for name in _files_below(folder) if name != OUTPUT_MARKER]
    if not present:
        return []
    try:
        manifest = json.loads((folder / OUTPUT_MARKER).read_text())
        written = set(manifest["files"]) if manifest.get("format") == MANIFEST_FORMAT else set()
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        written = set()
    return [name for name in present if name not in written]


def _holds_checkout(folder: Path, most: int = 100_000) -> bool:
    """Whether a ``.git`` lies anywhere below ``folder`` (a walk of at most ``most`` folders; more is refused
    too: an output folder of that size is not one this tool made)."""
    seen = 0
    for _base, dirs, files in os.walk(folder):
        if ".git" in dirs or ".git" in files:
            return True
        seen += 1
        if seen > most:
            return True
    return False


def mark_output_folder(path: Path) -> None:
    """The manifest of ``path``: every file in it now, written by this command."""
    names = [name for name in _files_below(path) if name != OUTPUT_MARKER]
    write_json(path / OUTPUT_MARKER, {"format": MANIFEST_FORMAT, "written_by": "spikeflops", "files": names})


def _checkout_of(path: Path) -> Path | None:
    """The root of the git work tree that holds ``path`` (or its nearest existing parent), if any."""
    for folder in (path, *path.parents):
        if (folder / ".git").exists():
            return folder
    return None


def _tracked_files(path: Path, checkout: Path | None) -> bool:
    if checkout is None or not path.is_dir():
        return False
    import subprocess

    try:
        proc = subprocess.run(["git", "-C", str(checkout), "ls-files", "--", str(path)],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False                    # no git here: the folder is refused anyway unless empty or ours
    return proc.returncode == 0 and bool(proc.stdout.strip())


def claim_new(path: str | os.PathLike) -> Path:
    """``path``, or ``<stem>-2<suffix>``, ``-3``... : the first name nobody holds, taken at once (an empty file
    made with O_EXCL, which a following atomic write replaces). Two runs started in the same second get
    two files: a default name must never overwrite another run's results."""
    path = check_writable(path)
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666))
            return candidate
        except FileExistsError:
            continue
        except OSError as exc:
            raise SpikeflopsError(f"{candidate}: cannot be created ({exc.strerror or exc})") from None
    raise SpikeflopsError(f"{path}: 10,000 runs already hold this name")


def check_writable(path: str | os.PathLike) -> Path:
    """``path`` as a file to be written: its folder made, a one-line error when it cannot be one.
    Commands call it before measuring, so a bad --out costs no measurement."""
    path = Path(path)
    if path.is_dir():
        raise SpikeflopsError(f"{path}: is a folder; give a file name to write to")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SpikeflopsError(f"{path}: cannot make its folder ({exc.strerror or exc})") from None
    if not os.access(path.parent, os.W_OK):
        raise SpikeflopsError(f"{path}: its folder is not writable")
    return path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


class _DuplicateKey(ValueError):
    pass


def _no_duplicates(pairs):
    out = {}
    for key, value in pairs:
        if key in out:                  # json keeps the last: the order of a file would decide a verdict
            raise _DuplicateKey(key)
        out[key] = value
    return out


def read_json(path: str | os.PathLike):
    path = Path(path)
    try:
        import stat

        if not stat.S_ISREG(os.stat(path).st_mode):     # a FIFO would block the open() forever
            raise SpikeflopsError(f"{path}: not a regular file")
        with open(path) as f:
            return json.load(f, object_pairs_hook=_no_duplicates)
    except FileNotFoundError:
        raise SpikeflopsError(f"{path}: no such file") from None
    except json.JSONDecodeError as exc:
        raise SpikeflopsError(f"{path}: not valid JSON (line {exc.lineno}: {exc.msg})") from None
    except _DuplicateKey as exc:
        raise SpikeflopsError(f"{path}: the key {str(exc)[:80]!r} appears twice in one object") from None
    except RecursionError:
        raise SpikeflopsError(f"{path}: nested too deeply to be a results file") from None
    except MemoryError:
        raise SpikeflopsError(f"{path}: too large to read into memory") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpikeflopsError(f"{path}: cannot read ({exc})") from None


def _jsonable(obj):
    if hasattr(obj, "to_dict"):
        return obj.to_dict()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")
