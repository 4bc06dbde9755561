"""Every location on disk, rooted at ENVMAN_HOME so tests can move it."""

from __future__ import annotations

import os
from pathlib import Path


def home() -> Path:
    """ENVMAN_HOME, default: the user cache dir (``~/.cache/envman`` on Linux)."""
    configured = os.environ.get("ENVMAN_HOME")
    if configured:
        return Path(configured).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("envman", appauthor=False))


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
