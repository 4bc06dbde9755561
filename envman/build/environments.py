"""Isolated engine environments: a uv virtualenv per lockfile, built once, marked complete last.

An environment lives in ``$ENVMAN_HOME/envs/<engine>-<version>-<variant>-<fingerprint>``;
the fingerprint digests the lockfile's body digest, the Python version, the variant and the
platform, so two combinations that share a lock share one environment. Safety:

- one file lock per environment folder (``envs/.locks/<id>.lock``; the id ends in the
  fingerprint): a second build of the same target waits, then reuses; ``envs rm`` and
  ``envs gc`` take the same lock and look again at the folder once they hold it;
- ``envman-env.json`` is written last (atomically): a directory without it is a build that
  was killed, and it is deleted before the next build starts; a deletion removes the marker
  first, so an interrupted one leaves an incomplete folder, never a "complete" broken one;
- the lockfile's digest is checked before anything is installed, and uv installs with
  ``--require-hashes``; any failure removes the half-built directory;
- after installing, the engine is imported inside the environment and its version must be
  the locked one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import shutil
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.version import Version

from envman import paths, proc
from envman.errors import ConfigError, TargetError, UsageError
from envman.files import atomic_write, ensure_dir, unusable
from envman.lock import lockfile, locks
from envman.lock.lockfile import Lockfile
from envman.lock.uv import Sources, Uv
from envman.matrix import combinations
from envman.matrix.combinations import Combination
from envman.matrix.schema import Matrix, Variant
from envman.report import NullReporter, Reporter

MARKER = "envman-env.json"
_CHECK = (
    "import importlib, importlib.metadata as m, sys\n"
    "importlib.import_module(sys.argv[1])\n"
    "print(m.version(sys.argv[2]))\n"
)


def envs_dir() -> Path:
    return paths.home() / "envs"


def _locks_dir() -> Path:
    return envs_dir() / ".locks"


def lock_path(path: Path) -> Path:
    """The build lock of an environment folder: builds, ``rm`` and ``gc`` all take this one."""
    return _locks_dir() / f"{path.name}.lock"


def _file_lock(path: Path) -> Any:
    from filelock import FileLock

    ensure_dir(paths.state_dir("envs") / ".locks")
    return FileLock(str(lock_path(path)))


def _delete(path: Path) -> None:
    """Remove an environment folder, its completion marker first."""
    try:
        (path / MARKER).unlink(missing_ok=True)
        shutil.rmtree(path)
    except FileNotFoundError:
        pass
    except OSError as error:
        raise unusable(path, error, "remove") from None


@dataclass(frozen=True)
class Environment:
    id: str
    path: Path
    engine: str
    engine_version: str
    variant: str
    python: str
    fingerprint: str
    lockfile: str
    lock_digest: str
    created: str
    last_used: float  # epoch seconds
    frontend: str = ""  # "xinference==1.4.0": the environment holds that frontend over the engine

    @property
    def python_bin(self) -> Path:
        return self.path / "bin" / "python"

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "path": str(self.path),
            "python": str(self.python_bin),
            "python_version": self.python,
            "engine": self.engine,
            "engine_version": self.engine_version,
            "variant": self.variant,
            "fingerprint": self.fingerprint,
            "lockfile": self.lockfile,
            "lock_digest": self.lock_digest,
            "created": self.created,
            "last_used": dt.datetime.fromtimestamp(self.last_used, dt.UTC).isoformat(timespec="seconds"),
            **({"frontend": self.frontend} if self.frontend else {}),
        }


def fingerprint(lock: Lockfile) -> str:
    parts = [lock.digest, lock.header.get("python", ""), lock.header["variant"], lock.header.get("platform", "")]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _read_marker(path: Path) -> Environment | None:
    marker = path / MARKER
    try:
        data = json.loads(marker.read_text(encoding="utf-8"))
        return Environment(
            id=path.name,
            path=path,
            engine=data["engine"],
            engine_version=data["engine_version"],
            variant=data["variant"],
            python=data["python"],
            fingerprint=data["fingerprint"],
            lockfile=data["lockfile"],
            lock_digest=data["lock_digest"],
            created=data["created"],
            last_used=marker.stat().st_mtime,
            frontend=str(data.get("frontend", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _write_marker(env: Environment) -> None:
    data = env.to_json()
    data["python"] = env.python
    atomic_write(env.path / MARKER, json.dumps(data, indent=2) + "\n")


def resolve_lock(
    matrix: Matrix, engine: str, version: Version, variant: str, uv: Uv, reporter: Reporter, frontend: str = ""
) -> Lockfile:
    """The lockfile of a combination: committed for known-good ones, else locked on the fly."""
    combination = Combination(engine, version, variant, frontend)
    if frontend:
        committed = combination in combinations.frontend_known_good(matrix, engine=engine, version=str(version))
    else:
        committed = combination in combinations.known_good(matrix, engine=engine, version=str(version), variant=variant)
    request = locks.request_for(matrix, combination, offline=committed)
    if committed:
        path = locks.lockfiles_dir(matrix) / request.filename
        if not path.is_file():
            raise ConfigError(f"the lockfile of {combination} is missing: {path}", hint=f"run `{request.command()}`")
        found = lockfile.read(path)
        found.verify()
        if found.inputs != request.inputs_digest():
            raise ConfigError(
                f"the lockfile of {combination} is stale: matrix.toml changed since {path.name} was made",
                hint=f"run `{request.command()}`",
            )
        return found
    path = locks.onthefly_dir() / request.filename
    if path.is_file():
        try:
            found = lockfile.read(path)
            found.verify()
            if found.inputs == request.inputs_digest():
                return found
        except ConfigError:
            pass  # an on-the-fly lock is ours to redo
    reporter.info(f"{combination} is not a known-good combination: locking it into {locks.onthefly_dir()}")
    return lockfile.read(locks.lock(request, locks.onthefly_dir(), uv, reporter))


@dataclass(frozen=True)
class BuildResult:
    environment: Environment
    reused: bool
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return {**self.environment.to_json(), "reused": self.reused, "seconds": round(self.seconds, 3)}


def build(
    matrix: Matrix,
    engine: str,
    version: Version,
    variant: str,
    *,
    uv: Uv,
    rebuild: bool = False,
    reporter: Reporter | None = None,
    frontend: str = "",
) -> BuildResult:
    """Create (or reuse) the environment of a combination (with ``frontend``: under it) from its lockfile."""
    from filelock import Timeout

    started = time.monotonic()
    reporter = reporter or NullReporter()
    var: Variant = matrix.engines[engine].variants[variant]
    lock = resolve_lock(matrix, engine, version, variant, uv, reporter, frontend)
    fp = fingerprint(lock)
    under = frontend.replace("==", "-") + "-" if frontend else ""
    path = paths.state_dir("envs") / f"{under}{engine}-{version}-{variant}-{fp[:12]}"
    file_lock = _file_lock(path)
    try:
        try:
            file_lock.acquire(timeout=0)
        except Timeout:
            reporter.info(f"another envman is building {path.name}; waiting for it")
            file_lock.acquire()
    except OSError as error:
        raise unusable(lock_path(path), error, "lock") from None
    try:
        existing = _read_marker(path)
        if existing is not None and existing.fingerprint == fp and not rebuild:
            try:
                os.utime(path / MARKER)
            except OSError as error:
                raise unusable(path / MARKER, error, "mark as used") from None
            return BuildResult(_read_marker(path) or existing, True, time.monotonic() - started)
        if path.exists():
            reporter.detail(f"removing {path} (incomplete or --rebuild)")
            _delete(path)
        try:
            sources = locks.sources_of(locks.request_for(matrix, Combination(engine, version, variant, frontend)))
            env = _create(matrix, engine, version, var, lock, path, fp, uv, reporter, sources, frontend)
        except BaseException:
            shutil.rmtree(path, ignore_errors=True)
            raise
        return BuildResult(env, False, time.monotonic() - started)
    finally:
        file_lock.release()


def _raise_if_disk_full(path: Path, error: TargetError) -> None:
    """uv's "No space left on device (os error 28)" is this host's problem, not the lock's: exit 3."""
    if "os error 28" in error.message or "No space left on device" in error.message:
        raise unusable(path, OSError(28, "No space left on device"), "build the environment in") from None


def _create(
    matrix: Matrix,
    engine: str,
    version: Version,
    variant: Variant,
    lock: Lockfile,
    path: Path,
    fp: str,
    uv: Uv,
    reporter: Reporter,
    sources: Sources | None = None,
    frontend: str = "",
) -> Environment:
    python = lock.header.get("python", lockfile.DEFAULT_PYTHON)
    sources = sources or Sources(variant.index_url, variant.extra_index_urls, variant.find_links)
    with reporter.status(f"creating {path.name} (Python {python})"):
        try:
            uv.venv(path, python)
        except TargetError as error:
            _raise_if_disk_full(path, error)
            raise
    with reporter.status(f"installing {lock.header.get('requirement')} from {lock.path.name} ({sources.describe()})"):
        try:
            uv.sync(lock.path, path / "bin" / "python", sources, build_env=variant.build_env)
        except TargetError as error:
            _raise_if_disk_full(path, error)
            raise TargetError(
                f"installing {lock.path.name} failed; nothing was kept.\n{error.message}",
                hint="uv's last lines above name the package and index that failed; "
                "check the network or the variant's index (ENVMAN_<ENGINE>_<VARIANT>_INDEX_URL)",
            ) from None
    from packaging.requirements import Requirement  # ~30 ms: not on a no-op build's path

    checks = [(matrix.engines[engine].module, Requirement(variant.package).name, str(version))]
    if frontend:
        name, _, frontend_version = frontend.partition("==")
        checks.append((matrix.frontends[name].module, matrix.frontends[name].package, frontend_version))
    for module, distribution, wanted in checks:
        _check_import(path, module, distribution, wanted, lock, reporter)
    env = Environment(
        id=path.name,
        path=path,
        engine=engine,
        engine_version=str(version),
        variant=variant.name,
        python=python,
        fingerprint=fp,
        lockfile=str(lock.path),
        lock_digest=lock.digest,
        created=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        last_used=time.time(),
        frontend=frontend,
    )
    _write_marker(env)
    return env


def _check_import(path: Path, module: str, distribution: str, version: str, lock: Lockfile, reporter: Reporter) -> None:
    """``module`` imports in the environment and ``distribution`` is the locked ``version``."""
    with reporter.status(f"checking that {module} imports"):
        result = proc.run(
            [str(path / "bin" / "python"), "-c", _CHECK, module, distribution],
            reporter=reporter,
            check=False,
            env=proc.child_env(drop=("PYTHONPATH", "PYTHONHOME")),
            timeout=600,
        )
    if result.returncode != 0:
        raise TargetError(f"{module} does not import in the new environment:\n{result.tail()}")
    installed = result.output.strip().splitlines()[-1] if result.output.strip() else ""
    if installed != str(version):
        raise TargetError(
            f"the environment has {distribution} {installed or '(none)'}, but {lock.path.name} locks {version}",
            hint="the lockfile and the index disagree; regenerate the lock with `envman lock`",
        )


# -- listing and cleaning --------------------------------------------------------------


@dataclass(frozen=True)
class Listed:
    id: str
    path: Path
    environment: Environment | None  # None: incomplete (a build was killed or is running)
    size_bytes: int
    referenced: bool

    def to_json(self) -> dict[str, Any]:
        base: dict[str, Any] = {"id": self.id, "path": str(self.path), "complete": self.environment is not None}
        if self.environment is not None:
            e = self.environment.to_json()
            base.update({k: e[k] for k in ("engine", "engine_version", "variant", "python_version", "last_used")})
        base.update({"size_bytes": self.size_bytes, "referenced": self.referenced})
        return base


def disk_usage(path: Path) -> int:
    """Bytes on disk, each inode once (files hard-linked from uv's cache count here too)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for root, dirs, files in os.walk(path):
        for name in files + dirs:
            try:
                st = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            key = (st.st_dev, st.st_ino)
            if key not in seen:
                seen.add(key)
                total += st.st_blocks * 512
    return total


def _iter_dirs() -> Iterator[Path]:
    base = envs_dir()
    if base.is_dir():
        for path in sorted(base.iterdir()):
            if path.is_dir() and not path.name.startswith("."):
                yield path


def list_environments(matrix: Matrix, sizes: bool = True) -> list[Listed]:
    referenced = {(c.engine, str(c.version), c.variant) for c in combinations.known_good(matrix)}
    out = []
    for path in _iter_dirs():
        env = _read_marker(path)
        ref = env is not None and (env.engine, env.engine_version, env.variant) in referenced
        out.append(Listed(path.name, path, env, disk_usage(path) if sizes else 0, ref))
    return out


def find(identifier: str) -> Path:
    """The one environment ``identifier`` names: its id, the end of its id (the fingerprint),
    or a part of it that no other id contains. Anything else is refused, deleting nothing."""
    wanted = identifier.strip()
    names = [p.name for p in _iter_dirs()]
    listing = ", ".join(names) or "none"
    if not any(ch.isalnum() for ch in wanted):  # "", "-", "." are parts of every id
        raise UsageError(
            f"{identifier!r} does not name an environment", hint=f"environments: {listing} (`envman envs`)"
        )
    matches = [p for p in _iter_dirs() if p.name == wanted]
    if not matches:
        matches = [p for p in _iter_dirs() if p.name.endswith("-" + wanted)]
    if not matches:
        matches = [p for p in _iter_dirs() if wanted in p.name]
    if not matches:
        raise UsageError(f"{identifier!r} matches no environment", hint=f"environments: {listing} (`envman envs`)")
    if len(matches) > 1:
        raise UsageError(
            f"{identifier!r} is ambiguous: it matches {', '.join(p.name for p in matches)}",
            hint="pass the whole id (`envman envs` lists them)",
        )
    return matches[0]


def remove(path: Path, wait: bool = True, older_than: float | None = None) -> bool:
    """Delete an environment under its build lock; False if it is kept.

    It is kept when a build holds the lock and not ``wait``, or, with ``older_than``
    (seconds), when the folder, looked at again under the lock, turned out complete and used
    more recently: a build that finished or reused it while gc was looking.
    """
    from filelock import Timeout

    lock = _file_lock(path)
    try:
        lock.acquire(timeout=-1 if wait else 0)
    except Timeout:
        return False
    except OSError as error:
        raise unusable(lock_path(path), error, "lock") from None
    try:
        if older_than is not None:
            env = _read_marker(path)
            if env is not None and env.last_used >= time.time() - older_than:
                return False
        _delete(path)
        return True
    finally:
        lock.release()


def held(path: Path) -> bool:
    """Whether a build holds the lock of ``path`` right now."""
    from filelock import Timeout

    lock = _file_lock(path)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        return True
    except OSError as error:
        raise unusable(lock_path(path), error, "lock") from None
    lock.release()
    return False


def parse_age(text: str) -> float:
    """'30d', '12h', '2w', '45m' -> seconds."""
    units = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
    if len(text) < 2 or text[-1] not in units or not text[:-1].isascii() or not text[:-1].isdigit():
        raise UsageError(f"{text[:40]!r} is not an age", hint="use a number and a unit: 45m, 12h, 30d, 2w")
    return float(text[:-1]) * units[text[-1]]  # a float: 400 digits is large, not an int overflow


def gc(matrix: Matrix, older_than: float, dry_run: bool = False) -> list[Listed]:
    """Remove environments unused for ``older_than`` seconds and every incomplete one no build holds.

    What the listing saw is only a candidate: each folder is judged again under its build
    lock, so one a build completes (or reuses) in the meantime is kept.
    """
    cutoff = time.time() - older_than
    removed = []
    for item in list_environments(matrix):
        stale = item.environment is None or item.environment.last_used < cutoff
        if not stale:
            continue
        if dry_run:
            if not held(item.path):
                removed.append(item)
        elif remove(item.path, wait=False, older_than=older_than):
            removed.append(item)
    return removed
