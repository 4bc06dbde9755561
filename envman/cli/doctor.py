"""``envman doctor``: what this machine has, and what envman needs from it.

The ``--json`` shape is documented in :mod:`envman.hardware.doctor`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from envman.cli._app import app
from envman.cli._console import err, out, print_json
from envman.errors import EnvmanError

if TYPE_CHECKING:  # --help lists `doctor` without loading the hardware and matrix modules
    from envman.hardware.doctor import DoctorReport
    from envman.hardware.host import Host
    from envman.matrix.schema import Matrix

GIB = 1024**3


@app.command("doctor")
def doctor(
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show this machine's OS, CPU, GPUs, driver, uv and docker, as envman sees them."""
    from envman.hardware.doctor import run_doctor

    matrix = _matrix()
    report = run_doctor(matrix.gpus if matrix else {})
    builds = _builds(matrix, report.host) if matrix else []
    if json:
        print_json(report.to_json() | {"builds": builds})
    else:
        for line in _table(report):
            out.print(line, markup=False)
        for build in builds:
            reasons = build["reasons"]
            assert isinstance(reasons, list)
            verdict = "runs here" if build["runs"] else "cannot run here: " + "; ".join(reasons)
            out.print(f"build {build['engine']} {build['version']} ({build['variant']})  {verdict}", markup=False)


def _matrix() -> Matrix | None:
    # The GPU table only names detected GPUs; a broken matrix must not stop the doctor.
    from envman.matrix.load import load_matrix

    try:
        return load_matrix()
    except EnvmanError as error:
        err.print(f"[yellow]warning:[/] matrix.toml not loaded: {error.message}", highlight=False)
        return None


def _builds(matrix: Matrix, host: Host) -> list[dict[str, object]]:
    """Each locked known-good build: whether this host runs it (accelerator, driver, GPUs, glibc) and why not."""
    from envman.matrix.combinations import known_good
    from envman.plan.requirements import check, requirements_for

    found = []
    for combination in known_good(matrix):
        variant = matrix.engines[combination.engine].variants[combination.variant]
        reasons: list[str] = []
        if variant.accelerator is not host.accelerator:
            reasons.append(f"a {variant.accelerator.value} build; this is a {host.accelerator.value} host")
        else:
            req = requirements_for(matrix, combination.engine, str(combination.version), combination.variant)
            if req is not None:
                reasons += check(req, host)
        found.append(
            {
                "engine": combination.engine,
                "version": str(combination.version),
                "variant": combination.variant,
                "runs": not reasons,
                "reasons": reasons,
            }
        )
    return found


def _table(report: DoctorReport) -> list[str]:
    """Two aligned columns, one fact a line (no wrapping, so it greps well)."""
    data = report.to_json()
    cpu = data["cpu"]
    flags = ", ".join(name for name, present in cpu["flags"].items() if present) or "none of avx2/avx512/amx"
    rows = [
        ("os", f"{data['os']} {data['arch']}" + (f", glibc {data['glibc']}" if data["glibc"] else "")),
        ("python", data["python"]),
        ("cpu", f"{cpu['model']}, {cpu['cores']} cores, {cpu['memory_total_bytes'] / GIB:.1f} GiB RAM"),
        ("cpu flags", flags),
    ]
    for gpu in data["gpus"]:
        entry = f" = {gpu['table_entry']}" if gpu["table_entry"] else ""
        free = f", {gpu['memory_free_bytes'] / GIB:.1f} free" if gpu["memory_free_bytes"] is not None else ""
        rows.append(
            (
                f"gpu {gpu['index']}",
                f"{gpu['name']}{entry}, CC {gpu['compute_capability']}, "
                f"{gpu['memory_total_bytes'] / GIB:.1f} GiB{free}",
            )
        )
    if not data["gpus"]:
        rows.append(("gpus", "none"))
    if data["driver_version"]:
        rows.append(("driver", f"{data['driver_version']} (CUDA {data['cuda_driver_version'] or '?'} max)"))
    uv = data["uv"]
    rows.append(("uv", f"{uv['version'] or '?'} at {uv['path']}" if uv else "not found"))
    docker = data["docker"]
    rows.append(("docker", ("ok: " if docker["reachable"] else "no: ") + docker["detail"]))
    rows.extend(("note", note) for note in data["notes"])
    width = max(len(key) for key, _ in rows)
    return [f"{key:<{width}}  {value}" for key, value in rows]
