"""Build contexts: the few files a generated Dockerfile COPYs, laid out as in the repository.

A generated Dockerfile names ``lockfiles/<lock>``, ``dockerfiles/extra-ca/`` and, for
engines served by an envman launcher, ``envman/engines/launchers/<module>.py``. A build
context holds exactly those (not the whole checkout), taken from wherever envman is
installed, plus the extra CA certificates asked for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from envman.docker.dockerfile import EXTRA_CA_DIR, LAUNCHERS_DIR, Target
from envman.errors import UsageError
from envman.files import atomic_write
from envman.matrix import combinations
from envman.matrix.combinations import Combination
from envman.matrix.schema import Matrix

EXTRA_CA_NAME = "envman-extra-ca.crt"  # update-ca-certificates reads *.crt only
_PEM = b"-----BEGIN CERTIFICATE-----"


def selected_combinations(
    matrix: Matrix,
    *,
    model: str | None = None,
    family: str | None = None,
    engine: str | None = None,
    version: str | None = None,
    variant: str | None = None,
) -> tuple[list[Combination], bool]:
    """:func:`envman.lock.locks.select`, where selecting nothing is an error (a Dockerfile needs a lock)."""
    selected, everything = combinations.select(
        matrix, model=model, family=family, engine=engine, version=version, variant=variant
    )
    if not selected:
        raise UsageError(
            "no known-good combination matches",
            hint="`envman ci matrix --format json` lists them; a Dockerfile needs a committed lockfile",
        )
    return selected, everything


def install_extra_ca(source: Path, directory: Path) -> Path:
    """Copy a PEM CA bundle to where every generated Dockerfile COPYs certificates from."""
    try:
        data = source.read_bytes()
    except OSError as error:
        raise UsageError(f"cannot read --extra-ca {source}: {error.strerror}") from None
    if _PEM not in data:
        raise UsageError(f"--extra-ca {source} holds no PEM certificate", hint="give a PEM file (BEGIN CERTIFICATE)")
    return atomic_write(directory / EXTRA_CA_NAME, data)


def launcher_source(name: str) -> Path:
    import envman

    path = Path(envman.__file__).resolve().parent.parent / LAUNCHERS_DIR / f"{name}.py"
    if not path.is_file():
        raise UsageError(f"envman's launcher module {name} is missing ({path})", hint="reinstall envman")
    return path


def assemble(target: Target, dockerfile_text: str, lock_dir: Path, directory: Path, extra_ca: Path | None) -> Path:
    """Write the build context for ``target`` into ``directory``; returns the Dockerfile's path."""
    lock = directory / target.lock_path
    lock.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(lock_dir / Path(target.lock_path).name, lock)
    ca_dir = directory / EXTRA_CA_DIR
    ca_dir.mkdir(parents=True, exist_ok=True)
    if extra_ca is not None:
        install_extra_ca(extra_ca, ca_dir)
    for name in target.launchers:
        dest = directory / LAUNCHERS_DIR / f"{name}.py"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(launcher_source(name), dest)
    dockerfile = directory / "Dockerfile"
    dockerfile.write_text(dockerfile_text, encoding="utf-8")
    return dockerfile
