"""``envman up MODEL``: from a model name to a running OpenAI-compatible endpoint.

Also ``envman ps`` and ``envman down``, for servers started with ``--detach``.
"""

from __future__ import annotations

import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from envman.cli._app import app, passthrough, verbose
from envman.cli._common import (
    EngineOption,
    ForceOption,
    FormatOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    VersionOption,
    load,
    target_host,
)
from envman.cli._console import err, out, print_json
from envman.errors import TargetError, UsageError
from envman.plan.result import Plan

SECRET_ENV = ("VLLM_API_KEY", "ENVMAN_API_KEY")


def _masked(argv: list[str], env: dict[str, str], api_key: str | None) -> tuple[list[str], dict[str, str]]:
    """What may be printed: the API key is never shown."""
    shown = ["***" if api_key and a == api_key else a for a in argv]
    return shown, {k: ("***" if k in SECRET_ENV else v) for k, v in env.items()}


def _snippets(url: str, served: str, api_key: str | None) -> list[str]:
    """Ready-to-paste client snippets (the key itself is never printed: $API_KEY)."""
    auth = " -H 'Authorization: Bearer $API_KEY'" if api_key else ""
    key = 'os.environ["API_KEY"]' if api_key else '"EMPTY"'
    body = json.dumps({"model": served, "messages": [{"role": "user", "content": "Hello!"}]})
    message = json.dumps([{"role": "user", "content": "Hello!"}])
    lines = [
        "curl:",
        f"  curl {url}/chat/completions -H 'Content-Type: application/json'{auth} \\",
        f"    -d {shlex.quote(body)}",
        "python (pip install openai):",
        "  from openai import OpenAI",
    ]
    if api_key:
        lines.append("  import os")
    lines += [
        f'  client = OpenAI(base_url="{url}", api_key={key})',
        f"  reply = client.chat.completions.create(model={json.dumps(served)}, messages={message})",
        "  print(reply.choices[0].message.content)",
    ]
    return lines


@app.command("up")
def up(
    model: Annotated[
        str, typer.Argument(help="Catalog model name, alias or hub repo id. Engine arguments go after --.")
    ],
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    hardware: HardwareOption = None,
    port: Annotated[int, typer.Option("--port", help="Port to serve on (0: a free one).")] = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    served_model_name: Annotated[
        str | None, typer.Option("--served-model-name", help="Model name clients use (default: the catalog name).")
    ] = None,
    max_model_len: Annotated[int | None, typer.Option("--max-model-len", min=1, help="Context length.")] = None,
    tensor_parallel_size: Annotated[
        str, typer.Option("--tensor-parallel-size", help="N, or auto (the smallest that fits).")
    ] = "auto",
    gpu_memory_utilization: Annotated[
        float | None, typer.Option("--gpu-memory-utilization", help="Share of GPU memory the engine may take.")
    ] = None,
    api_key: Annotated[str | None, typer.Option("--api-key", help="Require this key from clients.")] = None,
    model_path: Annotated[
        Path | None, typer.Option("--model-path", help="Serve local weights (an HF directory or a .gguf file).")
    ] = None,
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Let the engine run the model repository's own code.")
    ] = False,
    name: Annotated[
        str | None, typer.Option("--name", help="Name for `envman ps`/`down` (default: served name).")
    ] = None,
    detach: Annotated[bool, typer.Option("--detach", help="Start in the background; return when ready.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print the plan, argv and environment; build and start nothing.")
    ] = False,
    force: ForceOption = False,
    timeout: Annotated[float, typer.Option("--timeout", help="Seconds to wait for the engine to be ready.")] = 600,
    docker: Annotated[
        bool, typer.Option("--docker", help="Run the combination's Docker image instead of a local environment.")
    ] = False,
    base_image: Annotated[
        str | None, typer.Option("--base-image", help="With --docker: another base image (a local stand-in).")
    ] = None,
    extra_ca: Annotated[
        Path | None, typer.Option("--extra-ca", help="With --docker: a CA bundle the image build must trust.")
    ] = None,
    matrix: MatrixOption = None,
    json: JsonOption = False,
) -> None:
    """Plan, build or reuse the environment, get the weights, start the engine, wait until it answers."""
    from envman.cli._reporter import RichReporter
    from envman.plan.planner import Planner, PlanRequest
    from envman.run import ports, servers

    engine_args = passthrough()

    if json and not (dry_run or detach):
        raise UsageError("--json needs --dry-run or --detach", hint="a foreground server prints its logs instead")
    if tensor_parallel_size == "auto":
        tp = None
    elif tensor_parallel_size.isdigit() and int(tensor_parallel_size) > 0:
        tp = int(tensor_parallel_size)
    else:
        raise UsageError(f"--tensor-parallel-size {tensor_parallel_size!r} is not a number or auto")
    loaded = load(matrix)
    target = target_host(hardware, loaded)
    reporter = RichReporter(verbose())
    server_name = servers.check_name(name) if name else None
    if not dry_run:
        if server_name is None:
            pass  # checked once the served name is known
        port = ports.claim(port, host)
    elif port == 0:
        port = ports.free_port(host)

    def make_plan(path: str | None, bind: str | None = None, listen: int | None = None) -> Plan:
        return Planner(loaded, target).plan(
            PlanRequest(
                model=model,
                engine=engine,
                version=version,
                format=format,
                max_model_len=max_model_len,
                tensor_parallel_size=tp,
                memory_utilization=gpu_memory_utilization,
                trust_remote_code=trust_remote_code,
                force=force,
                host_address=bind or host,
                port=listen or port,
                served_model_name=served_model_name,
                model_path=path,
                api_key=api_key,
                extra_args=tuple(engine_args or ()),
            )
        )

    plan = make_plan(str(model_path) if model_path else None)
    server_name = server_name or servers.check_name(re_name(plan.served_model_name))
    if host not in ("127.0.0.1", "localhost", "::1"):
        reporter.warn(
            f"--host {host}: the server is reachable from other machines" + ("" if api_key else " without an API key")
        )
    for warning in plan.warnings:
        reporter.warn(warning)
    argv, env = _masked(list(plan.command), dict(plan.env), api_key)
    if dry_run:
        if json:
            print_json(
                {"plan": plan.to_json() | {"command": argv, "env": env}, "command": argv, "env": env, "url": plan.url}
            )
            return
        from envman.cli._render import render_plan

        render_plan(plan, out)
        return

    from envman.build.environments import build
    from envman.lock.uv import Uv, find_uv
    from envman.run.server import Server, command_for, serve, shutdown, start_owned
    from envman.run.weights import obtain

    # 1. weights first: a model that cannot be obtained fails before anything is built or started
    weights = obtain(plan.model, plan.artifact, model_path=model_path, reporter=reporter)
    if docker:
        _up_in_docker(
            loaded, plan, make_plan, weights, server_name, host, port, api_key, detach, json, timeout,
            base_image, extra_ca, reporter,
        )  # fmt: skip
        return
    if base_image or extra_ca:
        raise UsageError("--base-image and --extra-ca go with --docker")
    plan = make_plan(str(weights))
    # 2. the environment
    built = build(
        loaded,
        plan.engine,
        plan.engine_version,
        plan.variant.name,
        uv=Uv(find_uv(), reporter, verbose=verbose()),
        reporter=reporter,
    )
    env_python = built.environment.python_bin
    command = command_for(plan.command, plan.env, env_python, plan.url, plan.ready_path)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    log_path = servers.logs_dir() / f"{server_name}-{stamp}.log"
    summary = (
        f"{plan.model.name}: {plan.engine} {plan.engine_version} ({plan.variant.name}, {plan.artifact.label}, "
        f"dtype {plan.dtype or 'engine default'}, tensor_parallel_size {plan.tensor_parallel_size}, "
        f"max_model_len {plan.max_model_len})"
    )
    reporter.info(summary)
    reporter.info(f"starting: {shlex.join(_masked(list(command.argv), {}, api_key)[0])}")
    reporter.info(f"log: {log_path}")
    if detach:
        record_existing = servers.load(server_name)
        if record_existing is not None and record_existing.alive():
            raise UsageError(f"a server named {server_name!r} is running", hint="`envman down NAME` it, or pass --name")
        owned: list[Server] = []
        try:
            server = start_owned(command, log_path, owned, reporter)
            with reporter.status(f"waiting for {command.ready_url}"):
                server.wait_ready(timeout)
        except BaseException as error:
            for started in owned:
                shutdown(started.process)
            if isinstance(error, TargetError):
                raise _diagnosed(error, _read(log_path), loaded, plan.engine) from None
            raise
        record = servers.ServerRecord(
            name=server_name,
            model=plan.model.name,
            engine=plan.engine,
            engine_version=str(plan.engine_version),
            variant=plan.variant.name,
            url=plan.url,
            host=host,
            port=port,
            pid=server.pid,
            pid_start=servers.start_ticks(server.pid),
            started=time.time(),
            log=str(log_path),
            command=list(_masked(list(command.argv), {}, api_key)[0]),
        )
        servers.save(record)
        if json:
            print_json({"plan": plan.to_json() | {"command": argv, "env": env}, "command": argv, "env": env,
                        "url": plan.url, "name": server_name, "pid": server.pid, "log": str(log_path),
                        "ready_seconds": round(server.ready_seconds or 0.0, 3)})  # fmt: skip
            return
        _print_ready(plan.url, plan.served_model_name, api_key, server.ready_seconds, server_name)
        return

    def show(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    try:
        with serve(command, log_path, timeout=timeout, reporter=reporter, on_line=show) as server:
            _print_ready(plan.url, plan.served_model_name, api_key, server.ready_seconds, None)
            code = server.process.wait()
            raise _diagnosed(
                TargetError(f"the engine exited on its own ({code})", hint=f"full log: {log_path}"),
                server.log(),
                loaded,
                plan.engine,
            )
    except KeyboardInterrupt:
        err.print("stopped", highlight=False)
        sys.exit(130)
    except TargetError as error:
        raise _diagnosed(error, _read(log_path), loaded, plan.engine) from None


def re_name(served: str) -> str:
    """A server name from a served model name (``org/model`` → ``org-model``)."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in served)[:64] or "server"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""


def _diagnosed(error: TargetError, log: str, matrix: object, engine: str) -> TargetError:
    from envman.diagnose import diagnose
    from envman.matrix.schema import Matrix

    assert isinstance(matrix, Matrix)
    if getattr(error, "_diagnosed", False):
        return error
    findings = diagnose(log, matrix, engine=engine)
    if findings:
        first = findings[0]
        error = TargetError(
            f"{error.message}\ndiagnosis: {first.cause} ({first.entry})", hint=f"{first.fix}; {error.hint or ''}"
        )
    error._diagnosed = True  # type: ignore[attr-defined]
    return error


def _print_ready(url: str, served: str, api_key: str | None, seconds: float | None, name: str | None) -> None:
    ready = f" in {seconds:.1f}s" if seconds is not None else ""
    out.print(f"ready{ready}: {url}  (model: {served})", markup=False)
    for line in _snippets(url, served, api_key):
        out.print(line, markup=False)
    if name:
        out.print(f"running in the background as {name!r}: `envman ps`, `envman down {name}`", markup=False)
    else:
        out.print("Ctrl-C stops it.", markup=False)


@app.command("ps")
def ps(json: JsonOption = False) -> None:
    """List servers started with `envman up --detach` (dead ones are shown as dead)."""
    from envman.run import servers

    records = [r.to_json() for r in servers.all_records()]
    if json:
        print_json(records)
        return
    if not records:
        out.print("no servers", markup=False)
    for r in records:
        uptime = f"up {r['uptime_seconds']}s" if r["status"] == "running" else "DEAD"
        out.print(
            f"{r['name']}  {r['model']}  {r['engine']} {r['engine_version']}  {r['url']}  "
            f"{'container ' + r['container'] if r['container'] else 'pid ' + str(r['pid'])}  {uptime}",
            markup=False,
        )


@app.command("down")
def down(
    name: Annotated[str | None, typer.Argument(help="Server name (see `envman ps`).")] = None,
    all_: Annotated[bool, typer.Option("--all", help="Stop every server.")] = False,
) -> None:
    """Stop a server started with `envman up --detach` (or --all of them)."""
    from envman.run import servers

    if bool(name) == all_:
        raise UsageError("name a server or pass --all", hint="`envman ps` lists them")
    records = servers.all_records() if all_ else [r for r in [servers.load(servers.check_name(name or ""))] if r]
    if name and not records:
        known = ", ".join(r.name for r in servers.all_records()) or "none"
        raise UsageError(f"no server named {name!r}", hint=f"servers: {known}")
    for record in records:
        was_running = servers.stop(record)
        out.print(f"{record.name}: {'stopped' if was_running else 'was already dead; forgotten'}", markup=False)


def _up_in_docker(
    matrix: Any,
    plan: Plan,
    make_plan: Callable[..., Plan],
    weights: Path,
    name: str,
    host: str,
    port: int,
    api_key: str | None,
    detach: bool,
    json: bool,
    timeout: float,
    base_image: str | None,
    extra_ca: Path | None,
    reporter: Any,
) -> None:
    """`envman up --docker`: the combination's image, weights mounted, GPUs passed for cuda."""
    from envman.docker import container as containers
    from envman.docker.serve import start
    from envman.run import servers

    started = start(
        matrix, plan, make_plan, weights, server=name, host=host, port=port, timeout=timeout,
        base_image=base_image, extra_ca=extra_ca, reporter=reporter,
    )  # fmt: skip
    box, cname, argv, ready = started.container, started.name, list(started.argv), started.ready_seconds
    if detach:
        record = servers.ServerRecord(
            name=name, model=plan.model.name, engine=plan.engine, engine_version=str(plan.engine_version),
            variant=plan.variant.name, url=plan.url, host=host, port=port, pid=0, pid_start=None,
            started=time.time(), log=f"docker logs {cname}", command=_masked(argv, {}, api_key)[0], container=cname,
        )  # fmt: skip
        servers.save(record)
        if json:
            shown = _masked(argv, {}, api_key)[0]
            print_json(
                {"plan": plan.to_json(), "command": shown, "url": plan.url, "name": name, "container": cname,
                 "image": started.image, "ready_seconds": round(ready, 3)}
            )  # fmt: skip
            return
        _print_ready(plan.url, plan.served_model_name, api_key, ready, name)
        return
    _print_ready(plan.url, plan.served_model_name, api_key, ready, None)
    try:
        for chunk in box.logs(stream=True, follow=True):
            err.print(chunk.decode(errors="replace").rstrip("\n"), markup=False, highlight=False)
        box.reload()
        code = box.attrs["State"].get("ExitCode")
        raise TargetError(f"the engine's container exited on its own (exit {code})")
    except KeyboardInterrupt:
        err.print("stopping the container", highlight=False)
        containers.stop_and_remove(box)
        sys.exit(130)
    finally:
        containers.stop_and_remove(box)
