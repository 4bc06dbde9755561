"""``envman matrix``: the matrix as data (families, engines, floors) and its validation."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import out, print_json

if TYPE_CHECKING:
    from envman.matrix.schema import Matrix


def matrix_json(matrix: Matrix) -> dict[str, Any]:
    return {
        "path": matrix.path,
        "engines": {
            name: {
                "package": e.package,
                "formats": sorted(f.value for f in e.formats),
                "tensor_parallel": e.tensor_parallel,
                "known_good": [str(v) for v in e.known_good],
                "variants": {
                    v.name: {
                        "package": v.package,
                        "accelerator": v.accelerator.value,
                        "os": list(v.os),
                        "arch": list(v.arch),
                        "min_compute_capability": str(v.min_compute_capability) if v.min_compute_capability else None,
                        "index_url": v.index_url,
                        "extra_index_urls": list(v.extra_index_urls),
                        "find_links": list(v.find_links),
                        "exclude": list(v.exclude),
                    }
                    for v in e.variants.values()
                },
            }
            for name, e in matrix.engines.items()
        },
        "families": {
            name: {
                "hf_architectures": list(f.hf_architectures),
                "gguf_architectures": list(f.gguf_architectures),
                "model_types": list(f.model_types),
                "engines": {
                    engine: {
                        "min_version": str(s.min_version) if s.min_version else None,
                        "evidence": s.evidence,
                        "known_good": [str(v) for v in s.known_good],
                        "formats": sorted(x.value for x in s.formats),
                        "known_bad": [
                            {
                                "versions": str(b.versions),
                                "formats": sorted(x.value for x in b.formats),
                                "reason": b.reason,
                                "error": b.error,
                                "fixed_in": str(b.fixed_in) if b.fixed_in else None,
                            }
                            for b in s.known_bad
                        ],
                        "env": dict(s.env),
                        "args": list(s.args),
                    }
                    for engine, s in f.engines.items()
                },
            }
            for name, f in matrix.families.items()
        },
    }


@app.command("matrix")
def matrix_command(
    check: Annotated[bool, typer.Option("--check", help="Only validate; exit 2 with every problem.")] = False,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Show the matrix: families, their engines' version floors and known-good versions."""
    loaded = load(matrix)
    if check:
        out.print(
            f"{loaded.path}: ok ({len(loaded.engines)} engines, {len(loaded.families)} families, "
            f"{len(loaded.models)} models, {len(loaded.signatures)} signatures)",
            markup=False,
        )
        return
    if json:
        print_json(matrix_json(loaded))
        return
    engines = list(loaded.engines)
    width = max(len(n) for n in loaded.families) + 2
    column = max(len(e) for e in engines) + 2
    out.print("family".ljust(width) + "".join(e.ljust(column) for e in engines), markup=False)
    for name, family in loaded.families.items():
        cells = []
        for engine in engines:
            support = family.engines.get(engine)
            cell = f">={support.min_version}" if support and support.min_version else "-"
            cells.append(cell.ljust(column))
        out.print(name.ljust(width) + "".join(cells), markup=False)
