"""The uv adapter: resolve (``pip compile``), create (``venv``) and install (``pip sync``).

envman depends on the ``uv`` distribution from PyPI, which carries the binary; a ``uv``
on PATH is used when that is missing (``ENVMAN_UV`` names another one).
"""

from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from envman import proc
from envman.errors import PrerequisiteError
from envman.report import Reporter

_FOUND: dict[str, str] = {}
_FINDING = threading.Lock()


def find_uv() -> str:
    """The uv binary: ENVMAN_UV, the one the ``uv`` package ships, or uv on PATH (looked up once).

    Serialized: ``verify --jobs N`` asks from several threads, and the ``uv`` package's lookup
    reads ``sysconfig``, whose first initialisation is not thread-safe (it returned None for
    EXE in one thread while another filled the cache).
    """
    configured = os.environ.get("ENVMAN_UV")
    if configured:
        return configured
    with _FINDING:
        if "uv" not in _FOUND:
            _FOUND["uv"] = _find_uv()
        return _FOUND["uv"]


def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        return str(find_uv_bin())
    except (ImportError, FileNotFoundError, TypeError):
        found = shutil.which("uv")
        if found:
            return found
    raise PrerequisiteError("uv was not found", hint="pip install uv, or set ENVMAN_UV to its path")


@dataclass(frozen=True)
class Sources:
    """Where packages come from: one index, extra indexes and find-links locations."""

    index_url: str | None = None
    extra_index_urls: tuple[str, ...] = ()
    find_links: tuple[str, ...] = ()

    def args(self) -> list[str]:
        out: list[str] = []
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        for location in self.find_links:
            out += ["--find-links", location]
        # uv's default first-index strategy stays: extra indexes come before --index-url, so
        # torch 2.13.0+cpu is taken from the PyTorch CPU index, and no package can be shadowed
        # by a same-named one on a later index.
        return out

    def describe(self) -> str:
        parts = [f"index {self.index_url or 'https://pypi.org/simple'}"]
        parts += [f"extra index {u}" for u in self.extra_index_urls]
        parts += [f"find-links {u}" for u in self.find_links]
        return ", ".join(parts)


@dataclass(frozen=True)
class Uv:
    binary: str
    reporter: Reporter
    verbose: bool = False
    env: Mapping[str, str] = field(default_factory=dict)

    def _env(self) -> dict[str, str]:
        # uv cannot download Python builds everywhere: environments use a system Python.
        return proc.child_env({"UV_PYTHON_DOWNLOADS": "never", "UV_NO_PROGRESS": "1", **self.env})

    def run(
        self, args: Sequence[str], what: str, cwd: Path | None = None, env: Mapping[str, str] | None = None
    ) -> proc.Result:
        return proc.run(
            [self.binary, *args],
            env={**self._env(), **(env or {})},
            reporter=self.reporter,
            stream=self.verbose,
            what=what,
            cwd=str(cwd) if cwd else None,
        )

    def compile(
        self,
        requirements: Path,
        output: Path,
        *,
        python_version: str,
        platform: str,
        exclude_newer: str,
        sources: Sources,
        overrides: Path | None = None,
        exclude_newer_packages: Mapping[str, str] | None = None,
    ) -> proc.Result:
        """Resolve ``requirements``; paths are passed relative to its folder, so the output
        (its "# via -r requirements.in" lines) does not depend on where it ran."""
        work = requirements.parent
        args = [
            "pip", "compile", requirements.name,
            "--generate-hashes",
            "--no-header",
            "--python-version", python_version,
            "--python-platform", platform,
            "--exclude-newer", exclude_newer,
            "--output-file", str(output.relative_to(work) if output.is_relative_to(work) else output),
            *sources.args(),
        ]  # fmt: skip
        for package, date in (exclude_newer_packages or {}).items():
            args += ["--exclude-newer-package", f"{package}={date}"]
        if overrides is not None:
            args += ["--overrides", str(overrides.relative_to(work) if overrides.is_relative_to(work) else overrides)]
        return self.run(args, "resolving (uv pip compile)", cwd=work)

    def venv(self, path: Path, python: str) -> proc.Result:
        args = ["venv", str(path), "--python", interpreter(python), "--python-preference", "only-system", "--no-config"]
        return self.run(args, "creating the virtual environment (uv venv)")

    def sync(
        self, lockfile: Path, python: Path, sources: Sources, build_env: Mapping[str, str] | None = None
    ) -> proc.Result:
        """Install a lockfile; ``build_env`` reaches the builds of sdists (llama-cpp-python's CMAKE_ARGS).

        uv keeps each wheel it builds in its cache (UV_CACHE_DIR, default ~/.cache/uv): the
        next environment with the same lock installs it without compiling.
        """
        args = ["pip", "sync", str(lockfile), "--python", str(python), "--require-hashes", *sources.args()]
        # An index whose files carry no caching headers (some mirrors) makes uv fetch an sdist
        # again as a new revision and rebuild it (llama-cpp-python: minutes). From the cache
        # alone first: everything a previous build of the lock left there, the built wheel too.
        cached = proc.run(
            [self.binary, *args, "--offline"],
            env={**self._env(), **(build_env or {})},
            reporter=self.reporter,
            check=False,
            what="installing from uv's cache (uv pip sync --offline)",
        )
        if cached.returncode == 0:
            return cached
        return self.run(args, "installing (uv pip sync)", env=build_env)


def interpreter(version: str) -> str:
    """What ``uv venv --python`` is given for ``version``: envman's own interpreter when it is that
    version (an absolute path: uv need not search PATH, where a pyenv shim costs ~0.4 s), else
    the version for uv to find."""
    import sys

    if version == f"{sys.version_info.major}.{sys.version_info.minor}":
        base = getattr(sys, "_base_executable", None) or sys.executable
        return str(Path(base).resolve())
    return version
