"""Build contexts: the few files a generated Dockerfile COPYs, laid out as in the repository.

A generated Dockerfile names ``lockfiles/<lock>``, ``dockerfiles/extra-ca/`` and, for
engines served by an envman launcher, ``envman/engines/launchers/<module>.py``. A build
context holds exactly those (not the whole checkout), taken from wherever envman is
installed, plus the extra CA certificates asked for.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from envman.docker.dockerfile import EXTRA_CA_DIR, Target, launcher_dir
from envman.errors import UsageError
from envman.files import atomic_write
from envman.matrix import combinations
from envman.matrix.catalog import resolve_model
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
    frontend: str | None = None,
) -> tuple[list[Combination], bool]:
    """:func:`envman.lock.locks.select`, where selecting nothing is an error (a Dockerfile needs a lock).

    The frontend pairs (``xinference==4.1.0`` over xllamacpp) come with everything, or with
    ``frontend`` (``xinference`` or ``xinference==V``), and then only they; a model narrows them to
    the engines its family has.
    """
    if frontend:
        selected, _ = combinations.select(matrix, engine=engine, version=version, variant=variant, frontends=True)
        name = frontend.partition("==")[0].strip()
        if name not in matrix.frontends:
            known = ", ".join(matrix.frontends) or "none"
            raise UsageError(
                f"unknown frontend {name!r}", hint=f"frontends: {known} (e.g. --frontend xinference==4.1.0)"
            )
        selected = [c for c in selected if c.frontend and frontend in (c.frontend, c.frontend.partition("==")[0])]
        if model:
            family = resolve_model(matrix, model)[0].family
        if family:
            if family not in matrix.families:
                raise UsageError(f"unknown family {family!r}", hint="`envman matrix` lists the families")
            selected = [c for c in selected if c.engine in matrix.families[family].engines]
        if not selected:
            raise UsageError(
                f"no known-good pair under {frontend} matches",
                hint="`envman lock --frontend NAME` names them; a Dockerfile needs the pair's committed lockfile",
            )
        return selected, False
    everything = not (model or family or engine or version or variant)
    selected, everything = combinations.select(
        matrix, model=model, family=family, engine=engine, version=version, variant=variant, frontends=everything
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

    path = Path(envman.__file__).resolve().parent.parent / launcher_dir(name) / f"{name}.py"
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
        dest = directory / launcher_dir(name) / f"{name}.py"
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(launcher_source(name), dest)
    dockerfile = directory / "Dockerfile"
    dockerfile.write_text(dockerfile_text, encoding="utf-8")
    return dockerfile
