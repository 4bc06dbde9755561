"""``envman ps`` and ``envman down``: the servers envman runs, found by record or by marker."""

from __future__ import annotations

from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import JsonOption
from envman.cli._console import err, out, print_json
from envman.errors import UsageError


@app.command("ps")
def ps(json: JsonOption = False) -> None:
    """List servers started with `envman up` (dead ones as dead; unreadable records and untracked servers too)."""
    from envman.run import servers
    from envman.run.up import backends

    registry = backends()
    found = servers.listing()
    rows = [r.to_json(registry[r.backend].alive(r) if r.backend in registry else False) for r in found.records]
    rows += [
        {"name": u.name, "status": "untracked", "pid": u.pids[0], "pids": list(u.pids), "reason": "no readable record"}
        for u in found.untracked
    ]
    rows += [
        {"name": u.name, "status": "unreadable", "record": str(u.moved_to), "reason": u.reason}
        for u in found.unreadable
    ]
    if json:
        print_json(rows)
        return
    if not rows:
        out.print("no servers", markup=False)
    for r in rows:
        if r["status"] == "untracked":
            out.print(
                f"{r['name']}  untracked (no readable record)  pid {', '.join(map(str, r['pids']))}", markup=False
            )
            continue
        if r["status"] == "unreadable":
            err.print(
                f"warning: the record of {r['name']!r} is unreadable ({r['reason']}); kept at {r['record']}",
                markup=False,
                highlight=False,
            )
            continue
        uptime = f"up {r['uptime_seconds']}s" if r["status"] == "running" else "DEAD"
        where = f"container {r['container']}" if r["container"] else f"pid {r['pid']}"
        mode = " (foreground)" if r["foreground"] else ""
        out.print(
            f"{r['name']}  {r['model']}  {r['engine']} {r['engine_version']}  {r['url']}  {where}  {uptime}{mode}",
            markup=False,
        )


@app.command("down")
def down(
    name: Annotated[str | None, typer.Argument(help="Server name (see `envman ps`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every server.")] = False,
) -> None:
    """Stop a server started with `envman up` (or --all of them), its whole process group or container."""
    from envman.run import servers
    from envman.run.up import backends

    if (name is not None) == all_:
        raise UsageError("name a server or pass --all", hint="`envman ps` lists them")
    registry = backends()
    found = servers.listing()
    if name is not None:
        servers.check_name(name)
        records = [r for r in found.records if r.name == name]
        untracked = [u for u in found.untracked if u.name == name]
        if not records and not untracked:
            known = ", ".join(r.name for r in found.records) or "none"
            raise UsageError(f"no server named {name!r}", hint=f"servers: {known}")
    else:
        records, untracked = found.records, found.untracked
    for record in records:
        was_running = servers.stop(record, registry)
        out.print(f"{record.name}: {'stopped' if was_running else 'was already dead; forgotten'}", markup=False)
    for server in untracked:
        servers.stop_untracked(server)
        out.print(f"{server.name}: stopped (it had no readable record)", markup=False)
