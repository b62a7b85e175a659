"""Reading and writing result files: atomic writes, one-line errors on unreadable input."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path

from workloads.errors import SpikeflopsError


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
            f.write(text)
        os.replace(tmp, path)
    except OSError as exc:                  # a full disk, a quota: the old file stays as it was
        Path(tmp).unlink(missing_ok=True)
        raise SpikeflopsError(f"{path}: cannot write ({exc.strerror or exc}); the previous file is unchanged") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


@contextlib.contextmanager
def scratch_folder(prefix: str):
    """A new temporary folder that is kept when the block succeeds (it holds what a command reports) and
    removed when it fails, is refused or is interrupted: nothing is left behind by a command that ended early."""
    import shutil

    path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    except BaseException:
        shutil.rmtree(path, ignore_errors=True)
        raise


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
