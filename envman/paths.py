"""Every location on disk, rooted at ENVMAN_HOME so tests can move it.

:func:`home` only names the folder (listing needs nothing more); a stage that writes asks
:func:`state_dir` for its folder, which creates it and checks it can be written, so a home
that is a file, read-only or gone is one message with the path and the cause (exit 3)
before anything is half-written.
"""

from __future__ import annotations

import os
from pathlib import Path

from envman.files import ensure_dir, unusable


def home() -> Path:
    """ENVMAN_HOME, default: the user cache dir (``~/.cache/envman`` on Linux)."""
    configured = os.environ.get("ENVMAN_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("envman", appauthor=False))


def state_dir(name: str) -> Path:
    """``ENVMAN_HOME/<name>``, created, and checked writable (exit 3 naming the path if not)."""
    root = home()
    if root.exists() and not root.is_dir():
        raise unusable(root, NotADirectoryError(20, "it is a file, not a folder"), "use ENVMAN_HOME")
    folder = ensure_dir(root / name)
    if not os.access(folder, os.W_OK | os.X_OK):
        raise unusable(folder, PermissionError(13, "permission denied (the folder is read-only)"))
    return folder


def config_file() -> Path:
    """The user's config file (``ENVMAN_CONFIG`` or ``~/.config/envman/config.toml``)."""
    configured = os.environ.get("ENVMAN_CONFIG")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_config_dir

    return Path(user_config_dir("envman", appauthor=False)) / "config.toml"


def artifacts_dir() -> Path:
    """Downloaded release artifacts (sdists, wheels) read by ``envman probe``."""
    return home() / "artifacts"


def default_matrix() -> Path:
    """matrix.toml: ``ENVMAN_MATRIX``, else the one shipped with envman."""
    configured = os.environ.get("ENVMAN_MATRIX")
    if configured:
        return Path(configured).expanduser()
    package = Path(__file__).resolve().parent
    shipped = package / "matrix.toml"  # a wheel carries it inside the package
    if shipped.is_file():
        return shipped
    return package.parent / "matrix.toml"  # a source checkout keeps it at the top
