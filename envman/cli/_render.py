"""Human renderings of library results."""

from __future__ import annotations

import shlex

from rich.console import Console

from envman.engines.base import Launch
from envman.plan.result import Plan


def render_plan(plan: Plan, launch: Launch, console: Console) -> None:
    """The plan, and the launch it makes with the bindings at hand (secrets masked)."""
    p = plan
    head = (
        f"[bold]{p.model.name}[/] → [bold green]{p.engine} {p.engine_version}[/] ({p.variant.name}, "
        f"{p.artifact.label}, dtype {p.dtype or 'engine default'}, tensor_parallel_size {p.tensor_parallel_size}, "
        f"max_model_len {p.max_model_len})"
    )
    console.print(head)
    console.print(f"  target: {p.host.source if p.host.source != 'detected' else p.host.describe()}", markup=False)
    weights = p.artifact.repo + (f" ({p.artifact.file})" if p.artifact.file else "")
    console.print(f"  weights: {weights}", markup=False)
    for note in p.notes:
        console.print(f"  - {note}", markup=False)
    for reason in p.forced:
        console.print(f"  [yellow]forced:[/] {reason}", highlight=False)
    for warning in p.warnings:
        console.print(f"  [yellow]warning:[/] {warning}", highlight=False)
    shown = launch.shown_env()
    if shown:
        console.print("  env: " + " ".join(f"{k}={shlex.quote(v)}" for k, v in shown.items()), markup=False)
    console.print("  command: " + shlex.join(launch.argv), markup=False)
    console.print(f"  url: {launch.url}  (served model name: {launch.served_model_name})", markup=False)
    for integration in p.integrations:
        env = " ".join(f"{k}={v}" for k, v in integration["env"].items())
        console.print(
            f"  {integration['tool']} {integration['versions']}: set {env} ({integration['reason']})", markup=False
        )
    if p.rejected:
        console.print("  rejected:")
        for r in p.rejected:
            where = " ".join(x for x in (r.engine, r.version, r.variant, r.format) if x)
            console.print(f"    {where}: {r.reason}", markup=False)
