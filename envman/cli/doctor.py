"""``envman doctor``: what this machine has, and what envman needs from it.

The ``--json`` shape is documented in :mod:`envman.hardware.doctor`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._console import err, out, print_json
from envman.errors import EnvmanError
from envman.hardware.doctor import DoctorReport, run_doctor
from envman.hardware.host import GIB
from envman.matrix.schema import GpuSpec


@app.command("doctor")
def doctor(
    json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
) -> None:
    """Show this machine's OS, CPU, GPUs, driver, uv and docker, as envman sees them."""
    report = run_doctor(_gpu_table())
    if json:
        print_json(report.to_json())
    else:
        for line in _table(report):
            out.print(line, markup=False)


def _gpu_table() -> Mapping[str, GpuSpec]:
    # The GPU table only names detected GPUs; a broken matrix must not stop the doctor.
    from envman.matrix.load import load_matrix

    try:
        return load_matrix().gpus
    except EnvmanError as error:
        err.print(f"[yellow]warning:[/] GPU table not loaded: {error.message}", highlight=False)
        return {}


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
