"""The loaded matrix, kept between runs: validating matrix.toml is most of a short command's time.

``$ENVMAN_HOME/cache/matrix-<digest of its path>.pickle`` holds one ``(key, Matrix)`` pair per
matrix file: the matrix with the user's index overrides applied. The key digests everything
the result depends on: the matrix text and path, the config file, the ``ENVMAN_*`` variables,
envman's version, the Python version and the source of the modules that parse and override, so
a change to any of them is a miss and the file is rewritten. A file that cannot be read, does
not unpickle or holds another key is ignored; a home that cannot be written leaves the matrix
uncached.

The file is unpickled, so it is trusted as much as the rest of ``$ENVMAN_HOME`` (the
environments envman runs): envman writes it with mode 0600, and reads it only when it is owned
by this user and writable by nobody else.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

from envman import __version__, paths
from envman.errors import EnvmanError
from envman.files import atomic_write
from envman.matrix.schema import Matrix

# What turns matrix.toml into a Matrix: a change to one of them changes the result.
_LOADER = ("load.py", "reader.py", "lines.py", "schema.py", "overrides.py")


def cache_file(path: Path) -> Path:
    return paths.home() / "cache" / f"matrix-{hashlib.sha256(str(path).encode()).hexdigest()[:16]}.pickle"


def key(text: str, path: Path, environ: Mapping[str, str]) -> str | None:
    """The digest of the load's inputs; None where the loader's source cannot be read."""
    digest = hashlib.sha256()
    settings = sorted((k, v) for k, v in environ.items() if k.startswith("ENVMAN_"))
    for part in (__version__, sys.version, str(path), text, repr(settings)):
        digest.update(part.encode("utf-8", "surrogatepass") + b"\0")
    config = paths.config_file()
    try:
        digest.update(config.read_bytes() if config.is_file() else b"(no config)")
        here = Path(__file__).resolve().parent
        for name in _LOADER:
            digest.update((here / name).read_bytes())
    except OSError:
        return None
    return digest.hexdigest()


def _read(file: Path, wanted: str) -> Matrix | None:
    try:
        with file.open("rb") as handle:
            st = os.fstat(handle.fileno())
            if st.st_uid != os.getuid() or st.st_mode & 0o022:
                return None  # written by someone else, or writable by others: not ours to unpickle
            found_key, matrix = pickle.load(handle)  # noqa: S301 - envman's own file, checked above
    except Exception:  # missing, unreadable, truncated or from another envman: a miss
        return None
    return matrix if found_key == wanted and isinstance(matrix, Matrix) else None


def load_cached(text: str, path: Path, environ: Mapping[str, str], load: Callable[[], Matrix]) -> Matrix:
    """``load()``, or the Matrix an earlier run loaded from the same inputs."""
    wanted = key(text, path, environ)
    if wanted is None:
        return load()
    file = cache_file(path)
    cached = _read(file, wanted)
    if cached is not None:
        return cached
    matrix = load()  # a ConfigError propagates, and nothing is cached
    with contextlib.suppress(EnvmanError):  # an unwritable home: the next run loads again
        atomic_write(file, pickle.dumps((wanted, matrix), protocol=pickle.HIGHEST_PROTOCOL), mode=0o600)
    return matrix
