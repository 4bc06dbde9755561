"""``envman models``: the model catalog; ``envman models inspect MODEL``: any model, read from its metadata."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load
from envman.cli._console import err, out, print_json

models_app = typer.Typer(help="The model catalog, and what envman reads from any model.", no_args_is_help=False)
app.add_typer(models_app, name="models")


@models_app.callback(invoke_without_command=True)
def models(ctx: typer.Context, matrix: MatrixOption = None, json: JsonOption = False) -> None:
    """List the catalog: name, family, size, modalities and the formats its weights come in."""
    if ctx.invoked_subcommand is not None:
        return
    from envman.models import model_json

    loaded = load(matrix)
    if json:
        print_json([model_json(m) for m in loaded.models.values()])
        return
    width = max(len(n) for n in loaded.models) + 2
    for m in loaded.models.values():
        formats = ", ".join(a.label for a in m.artifacts)
        size = f"{m.params_b:g}B" if m.params_b >= 0.1 else "tiny"
        out.print(
            f"{m.name.ljust(width)}{m.family.ljust(13)}{size.rjust(7)}  "
            f"{'+'.join(x.value for x in m.modalities):<11} {formats}",
            markup=False,
        )


@models_app.command("inspect")
def inspect(
    model: Annotated[
        str,
        typer.Argument(
            help="A catalog name or alias, a hub repo id (org/name[@revision]), a model folder or a .gguf file.",
            show_default=False,
        ),
    ],
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Read MODEL's metadata (nothing but metadata is downloaded) and print what was read and from where."""
    from envman.models import resolve

    resolved = resolve(load(matrix), model, allow_unknown=True)
    if json:
        print_json(resolved.to_json())
    else:
        out.print(resolved.describe(), markup=False)
    if not resolved.model.family:
        err.print("[yellow]warning:[/] no engine can be planned for it until its family is in matrix.toml")
