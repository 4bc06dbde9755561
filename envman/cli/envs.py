"""``envman envs``: list, remove and garbage-collect environments."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption, MatrixOption, load, within
from envman.cli._console import out, print_json
from envman.errors import TargetError

envs_app = typer.Typer(help="List, remove and garbage-collect engine environments.", no_args_is_help=False)
app.add_typer(envs_app, name="envs")


def _size(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


@envs_app.callback(invoke_without_command=True)
def envs(ctx: typer.Context, matrix: MatrixOption = None, json: JsonOption = False) -> None:
    """List environments: engine, version, variant, size, last used, referenced by matrix.toml, path."""
    if ctx.invoked_subcommand is not None:
        return
    from envman.build.environments import list_environments

    items = list_environments(load(matrix))
    if json:
        print_json([i.to_json() for i in items])
        return
    if not items:
        out.print("no environments", markup=False)
    for item in items:
        env = item.environment
        if env is None:
            out.print(f"{item.id}  INCOMPLETE  {_size(item.size_bytes)}  {item.path}", markup=False)
            continue
        used = dt.datetime.fromtimestamp(env.last_used).strftime("%Y-%m-%d %H:%M")
        ref = "referenced" if item.referenced else "unreferenced"
        out.print(
            f"{item.id}  {env.engine} {env.engine_version} {env.variant}  {_size(item.size_bytes)}  "
            f"used {used}  {ref}  {item.path}",
            markup=False,
        )


@envs_app.command("rm")
def rm(identifier: Annotated[str, typer.Argument(help="Environment id (or a unique part of it).")]) -> None:
    """Remove one environment."""
    from envman.build.environments import find, remove

    path = find(identifier)
    if not remove(path, wait=False):
        raise TargetError(
            f"{path.name} is being built by another envman; nothing was removed",
            hint="run `envman envs rm` again when that build has finished",
        )
    out.print(f"removed {path}", markup=False)


@envs_app.command("gc")
def gc(
    older_than: Annotated[str, typer.Option("--older-than", help="Age of last use: 45m, 12h, 30d, 2w.")] = "30d",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")] = False,
    matrix: MatrixOption = None,
) -> None:
    """Remove environments unused for --older-than, and incomplete ones no build holds."""
    from envman.build.environments import gc as collect
    from envman.build.environments import parse_age

    removed = collect(load(matrix), within("--older-than", parse_age(older_than)), dry_run=dry_run)
    verb = "would remove" if dry_run else "removed"
    for item in removed:
        out.print(f"{verb} {item.id} ({_size(item.size_bytes)})", markup=False)
    out.print(f"{verb} {len(removed)} environments, {_size(sum(i.size_bytes for i in removed))}", markup=False)
