"""Atomic file output: write to a temporary file beside the target, then rename it into place,
so a crash or a full disk never leaves a half-written file under the final name. Missing
parent folders are created (an output path like runs/x.pt just works). Also what the readers
share: MissingFile, the mark of a "not there / a directory" error."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path


class MissingFile(Exception):
    """Mixed into a reader's error when the file it was given is not there or is a
    directory: the request is wrong, not a file (a command line ends it as a usage error,
    exit 2)."""


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "wb"):
    """Yield a file object; on success the file appears at `path`, on error nothing does."""
    with atomic_path(path) as tmp, open(tmp, mode) as f:
        yield f


def atomic_write(path: str | os.PathLike, data: bytes | str) -> Path:
    with atomic_open(path, "w" if isinstance(data, str) else "wb") as f:
        f.write(data)
    return Path(path)


def read_toml(path: str | os.PathLike, error=ValueError) -> dict:
    """A TOML file's table; `error` (a ValueError subclass) naming the file when it is missing,
    a directory, unreadable or not valid TOML (the recipe and sweep-spec readers)."""
    import tomllib

    p = Path(path)
    if p.is_dir():
        raise error(f"{path}: is a directory, not a TOML file")
    if not p.exists():
        raise error(f"{path}: no such file")
    try:
        return tomllib.loads(p.read_text())
    except (OSError, UnicodeDecodeError) as e:
        raise error(f"{path}: cannot read ({e})") from None
    except tomllib.TOMLDecodeError as e:
        raise error(f"{path}: not valid TOML ({e})") from None


def make_parent(path: str | os.PathLike) -> Path:
    """Create the folder `path` will be written in, with its parents; NotADirectoryError
    naming the path when a file stands where a folder must be (or it cannot be made)."""
    parent = Path(path).parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise NotADirectoryError(f"{path}: cannot create the folder {parent}: a file of that "
                                 "name is in the way") from None
    except OSError as e:
        raise NotADirectoryError(f"{path}: cannot create the folder {parent}: "
                                 f"{e.strerror or e}") from None
    return parent


def check_writable(path: str | os.PathLike) -> Path:
    """Check, before long work starts, that a file can be written at `path`: not a
    directory, its folder made (with parents) and writable. OSError naming `path`."""
    p = Path(path)
    if p.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give a file name")
    parent = make_parent(p)
    if not os.access(parent, os.W_OK):
        raise PermissionError(f"{path}: cannot write in {parent} (permission denied)")
    return p


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str = ".tmp"):
    """Yield a temporary path beside `path` for a writer that opens files by name (h5py);
    on success it is renamed to `path` with the mode a plain open() would give (0666 less the
    umask; the temporary file is private while it is written), on error (SIGTERM included,
    which the command line turns into an exit) removed. A directory at `path`, or a folder
    that cannot be written, is an OSError naming `path`, not the temporary name."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(f"{path}: is a directory; give a file name")
    make_parent(path)
    try:
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=suffix, dir=parent)
    except OSError as e:
        raise type(e)(f"{path}: cannot write in {parent} ({e.strerror or e})") from None
    os.close(fd)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
