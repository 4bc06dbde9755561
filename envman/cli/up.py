"""``envman up MODEL``: from a model name to a running OpenAI-compatible endpoint."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from envman.cli._app import app, passthrough, verbose
from envman.cli._common import (
    DriverOption,
    EngineOption,
    ForceOption,
    FormatOption,
    FrontendOption,
    GpuMemoryUtilizationOption,
    HardwareOption,
    JsonOption,
    MatrixOption,
    MaxModelLenOption,
    NetworkInterfaceOption,
    NodesOption,
    PortOption,
    TimeoutOption,
    VersionOption,
    load,
    target_host,
)
from envman.cli._common import tensor_parallel_size as parse_tensor_parallel_size
from envman.cli._console import err, out, print_json
from envman.errors import EnvmanError, TargetError, Terminated, UsageError

if TYPE_CHECKING:
    from envman.engines.launch import Bindings
    from envman.matrix.schema import Matrix
    from envman.plan.result import Plan
    from envman.report import Reporter

LOCAL_BINDS = ("127.0.0.1", "localhost", "::1")


@app.command("up")
def up(
    model: Annotated[
        str, typer.Argument(help="Catalog model name, alias or hub repo id. Engine arguments go after --.")
    ],
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    hardware: HardwareOption = None,
    driver: DriverOption = None,
    port: PortOption = 8000,
    host: Annotated[str, typer.Option("--host", help="Address to bind (127.0.0.1: this machine only).")] = "127.0.0.1",
    served_model_name: Annotated[
        str | None, typer.Option("--served-model-name", help="Model name clients use (default: the catalog name).")
    ] = None,
    max_model_len: MaxModelLenOption = None,
    tensor_parallel_size: Annotated[
        str, typer.Option("--tensor-parallel-size", help="N, or auto (the smallest that fits).")
    ] = "auto",
    gpu_memory_utilization: GpuMemoryUtilizationOption = None,
    nodes: NodesOption = None,
    network_interface: NetworkInterfaceOption = None,
    local_nodes: Annotated[
        bool,
        typer.Option(
            "--local-nodes",
            help="With --nodes N: run all N ranks on this host's CPU (a test of the multi-node launch).",
        ),
    ] = False,
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
    frontend: FrontendOption = None,
    timeout: TimeoutOption = 600,
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
    from envman.cli._model import local_weights, plan_request, resolve_model_arg
    from envman.cli._nodes import launches, nodes_json, render_nodes
    from envman.cli._reporter import RichReporter
    from envman.engines.launch import Bindings
    from envman.plan.planner import Planner
    from envman.run import ports, servers

    engine_args = tuple(passthrough() or ())
    if json and not (dry_run or detach):
        raise UsageError("--json needs --dry-run or --detach", hint="a foreground server prints its logs instead")
    if network_interface and (nodes is None or nodes < 2):
        raise UsageError("--network-interface goes with --nodes N (the interface between the nodes)")
    if local_nodes and (nodes is None or nodes < 2):
        raise UsageError("--local-nodes needs --nodes 2 or more", hint="e.g. --nodes 2 --local-nodes")
    if local_nodes and (docker or frontend):
        raise UsageError("--local-nodes runs the ranks from a local environment: not with --docker or --frontend")
    if nodes is not None and nodes > 1 and not dry_run and not local_nodes:
        raise UsageError(
            f"envman up --nodes {nodes} would start engines on other machines: envman does not start remote nodes",
            hint=f"--dry-run --nodes {nodes} prints each node's commands; `envman k8s MODEL --nodes {nodes}` "
            "prints a LeaderWorkerSet that starts them",
        )
    tp = parse_tensor_parallel_size(tensor_parallel_size)
    if not dry_run and (base_image or extra_ca) and not docker:
        raise UsageError("--base-image and --extra-ca go with --docker")
    loaded = load(matrix)
    target = target_host(hardware, loaded, driver)
    reporter = RichReporter(verbose())
    if name:
        servers.check_name(name)
    port = ports.free_port(host) if port == 0 else (port if dry_run else ports.claim(port, host))
    resolved = resolve_model_arg(loaded, model, model_path)
    for note in resolved.warnings:
        reporter.warn(note)
    model_path = local_weights(resolved, model_path)
    plan = Planner(loaded, target).plan(
        plan_request(
            resolved,
            engine=engine,
            version=version,
            format=format,
            max_model_len=max_model_len,
            tensor_parallel_size=tp,
            nodes=nodes,
            local_nodes=local_nodes,
            memory_utilization=gpu_memory_utilization,
            trust_remote_code=trust_remote_code,
            force=force,
            frontend=frontend,
        )
    )
    server_name = name or servers.check_name(re_name(served_model_name or plan.model.name))
    bindings = Bindings(
        weights=str(model_path) if model_path else None,
        host=host,
        port=port,
        served_model_name=served_model_name,
        api_key=api_key,
        extra_args=engine_args,
        network_interface=network_interface,
    )
    # the adapter refuses a key its engine cannot check, before anything runs
    shown, per_node = launches(plan, bindings, local=local_nodes)
    if plan.frontend is not None:
        from envman.frontends.serve import shown_launch

        shown = shown_launch(plan, bindings)  # refuses --api-key and engine arguments, before anything runs
    if host not in LOCAL_BINDS:
        reporter.warn(
            f"--host {host}: the server is reachable from other machines" + ("" if api_key else " without an API key")
        )
    for warning in plan.warnings:
        reporter.warn(warning)
    if dry_run:
        if json:
            nodes_part = nodes_json(shown, per_node)
            print_json(
                {"plan": plan.to_json() | shown.to_json() | nodes_part, **shown.to_json(), **nodes_part,
                 "name": server_name}
            )  # fmt: skip
            return
        from envman.cli._render import render_plan

        render_plan(plan, shown, out)
        render_nodes(plan, per_node, out, local=local_nodes)
        return
    _serve(
        loaded, plan, bindings, server_name, model_path, detach, json, timeout, docker, base_image, extra_ca, reporter,
        local_nodes,
    )  # fmt: skip


def _serve(
    matrix: Matrix,
    plan: Plan,
    bindings: Bindings,
    name: str,
    model_path: Path | None,
    detach: bool,
    json: bool,
    timeout: float,
    docker: bool,
    base_image: str | None,
    extra_ca: Path | None,
    reporter: Reporter,
    local_nodes: bool = False,
) -> None:
    """Weights, then the environment or image, then the server; banner and snippets once it answers."""
    from dataclasses import replace

    from envman.lock.uv import Uv, find_uv
    from envman.run.up import DockerOptions, running
    from envman.run.weights import obtain

    # 1. weights first: a model that cannot be obtained fails before anything is built or started
    weights = obtain(plan.model, plan.artifact, model_path=model_path, reporter=reporter)
    bindings = replace(bindings, weights=str(weights))
    reporter.info(
        f"{plan.model.name}: {plan.engine} {plan.engine_version} ({plan.variant.name}, {plan.artifact.label}, "
        f"dtype {plan.dtype or 'engine default'}, tensor_parallel_size {plan.tensor_parallel_size}, "
        f"max_model_len {plan.max_model_len})"
    )

    def show(line: str) -> None:
        err.print(line, markup=False, highlight=False)

    uv = Uv(find_uv(), reporter, verbose=verbose())
    options = DockerOptions(base_image, extra_ca) if docker else None
    starter = None
    if plan.frontend is not None:
        from envman.frontends.serve import starter_for

        starter = starter_for(plan, bindings, weights, timeout)
    elif local_nodes:
        from envman.run import local_nodes as local

        starter = local.starter_for(plan, bindings)  # type: ignore[assignment]
    try:
        with running(
            matrix, plan, bindings, name=name, weights=weights, uv=uv, timeout=timeout, detach=detach,
            docker=options, reporter=reporter, on_line=None if detach else show, starter=starter,
        ) as started:  # fmt: skip
            served = started.launch.served_model_name
            if detach:
                if json:
                    print_json(
                        {"plan": plan.to_json() | started.launch.to_json(), **started.launch.to_json(), "name": name,
                         "pid": started.record.pid or None, "container": started.record.container,
                         "log": started.record.log, "ready_seconds": round(started.server.ready_seconds or 0.0, 3)}
                    )  # fmt: skip
                    return
                _print_ready(started.launch.url, served, bindings.api_key, started.server.ready_seconds, name)
                return
            _print_ready(started.launch.url, served, bindings.api_key, started.server.ready_seconds, None)
            code = started.wait()
            raise TargetError(f"the engine exited on its own ({code})", hint=f"full log: {started.log_path}")
    except Terminated as stop:
        err.print(f"stopped ({stop.signal_name})", highlight=False)
        raise
    except KeyboardInterrupt:
        err.print("stopped", highlight=False)
        sys.exit(130)
    except TargetError as error:
        raise _diagnosed(error, matrix, plan.engine) from None


def re_name(served: str) -> str:
    """A server name from a served model name (``org/model`` → ``org-model``)."""
    return "".join(c if c.isalnum() or c in "._-" else "-" for c in served).lstrip("._-")[:64] or "server"


def _diagnosed(error: TargetError, matrix: Matrix, engine: str) -> EnvmanError:
    """The error with the matrix's diagnosis of the engine's log, when one matches."""
    from envman.diagnose import diagnose, render
    from envman.run.server import StartupError

    log = error.log if isinstance(error, StartupError) else ""
    findings = diagnose(f"{log}\n{error.message}", matrix, engine=engine)
    if not findings:
        return error
    return TargetError(f"{error.message}\ndiagnosis: {render(findings)}", hint=error.hint)


def _print_ready(url: str, served: str, api_key: str | None, seconds: float | None, name: str | None) -> None:
    from envman.run import snippets

    ready = f" in {seconds:.1f}s" if seconds is not None else ""
    out.print(f"ready{ready}: {url}  (model: {served})", markup=False)
    for line in snippets.lines(url, served, bool(api_key)):
        out.print(line, markup=False)
    if name:
        out.print(f"running in the background as {name!r}: `envman ps`, `envman down {name}`", markup=False)
    else:
        out.print("Ctrl-C stops it.", markup=False)
