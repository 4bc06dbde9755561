"""The one way envman writes a file: atomically, under a unique temporary name.

A reader sees the old content or the new one, never half of either; two writers of the
same path never share a temporary file (each gets its own ``.NAME.XXXXXX.tmp`` beside the
target, so the final rename stays on one file system); a failed write (full disk, a
read-only folder, an interrupt) removes its temporary file and leaves the target as it
was. An ``OSError`` becomes a :class:`~envman.errors.PrerequisiteError` naming the path
and the cause (exit 3), so an unusable ENVMAN_HOME is a message, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import stat
import tempfile
from pathlib import Path

from envman.errors import PrerequisiteError, UsageError


def unusable(path: Path, error: OSError, what: str = "write") -> PrerequisiteError:
    """The error for a path envman cannot use: the path, the cause and what to do."""
    cause = error.strerror or str(error)
    return PrerequisiteError(
        f"cannot {what} {path}: {cause}",
        hint="check that the folder exists, is writable and has free space (ENVMAN_HOME moves envman's state)",
    )


def confined(root: Path, relative: str, *, follow_links: bool = True) -> Path:
    """``root / relative``, refused unless it stays inside ``root`` (a path from data may be hostile).

    Checked on the text and (``follow_links``) on what already exists, so neither ``..`` nor
    an absolute path nor a symbolic link inside ``root`` leads out of it. The hub cache links
    each snapshot file to a blob beside the snapshot: there the text is what is checked.
    """
    candidate = root / relative
    parts = Path(relative).parts
    if not relative or Path(relative).is_absolute() or ".." in parts or "\\" in relative:
        raise UsageError(f"{relative!r} points outside {root}", hint="paths in matrix.toml are relative, without '..'")
    if follow_links and not candidate.resolve().is_relative_to(root.resolve()):
        raise UsageError(f"{relative!r} points outside {root} (through a symbolic link)")
    return candidate


def ensure_dir(path: Path) -> Path:
    """``mkdir -p`` that reports a path it cannot create (a file in the way, read-only) as exit 3."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise unusable(path, error, "create the folder") from None
    if not path.is_dir():
        raise unusable(path, NotADirectoryError(20, "not a directory"), "create the folder")
    return path


def _umask() -> int:
    # Linux shows it in /proc (reading it so is safe beside other threads; setting it to read it is not).
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def _mode_for(path: Path) -> int:
    try:
        return stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return 0o666 & ~_umask()


def atomic_write(path: Path, data: str | bytes, *, mode: int | None = None) -> Path:
    """Write ``data`` to ``path`` through a unique temporary file and a rename.

    ``mode`` sets the permissions before the content is visible (0o600 for secrets); without
    it a rewritten file keeps its mode and a new one gets what the umask allows (mkstemp's
    own 0600 would make a lockfile or matrix.toml unreadable to other users and containers).
    """
    ensure_dir(path.parent)
    if mode is None:
        mode = _mode_for(path)
    payload = data.encode("utf-8") if isinstance(data, str) else data
    try:
        fd, staged_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise unusable(path, error) from None
    staged = Path(staged_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            os.fchmod(handle.fileno(), mode)
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(staged, path)
    except BaseException as error:
        with contextlib.suppress(OSError):
            staged.unlink()
        if isinstance(error, OSError):
            raise unusable(path, error) from None
        raise
    return path
