"""``envman k8s MODEL``: Kubernetes manifests (LeaderWorkerSet over nodes, or a Deployment) for a plan."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from envman.cli._app import app
from envman.cli._common import (
    EngineOption,
    ForceOption,
    FormatOption,
    HardwareOption,
    MatrixOption,
    MaxModelLenOption,
    ModelArgument,
    NetworkInterfaceOption,
    NodesOption,
    PortOption,
    VersionOption,
    load,
    target_host,
)
from envman.cli._console import err, out


@app.command("k8s")
def k8s(
    model: ModelArgument,
    hardware: HardwareOption = None,
    nodes: NodesOption = None,
    network_interface: NetworkInterfaceOption = None,
    namespace: Annotated[str, typer.Option("--namespace", help="Namespace of the manifests.")] = "default",
    image: Annotated[
        str | None,
        typer.Option("--image", help="Image to run (default: envman's image for the combination).", show_default=False),
    ] = None,
    name: Annotated[str | None, typer.Option("--name", help="Name of the workload and Service.")] = None,
    secret: Annotated[
        str, typer.Option("--secret", help="Secret with the keys hf-token (optional) and api-key.")
    ] = "envman",  # noqa: S107 (the Secret's name, not a secret)
    trust_remote_code: Annotated[
        bool, typer.Option("--trust-remote-code", help="Let the engine run the model repository's own code.")
    ] = False,
    api_key: Annotated[bool, typer.Option("--api-key", help="Require the Secret's api-key from clients.")] = False,
    port: PortOption = 8000,
    output: Annotated[Path | None, typer.Option("--output", help="Write the manifests to FILE.")] = None,
    engine: EngineOption = None,
    version: VersionOption = None,
    format: FormatOption = None,
    max_model_len: MaxModelLenOption = None,
    force: ForceOption = False,
    matrix: MatrixOption = None,
) -> None:
    """Print Kubernetes manifests that serve MODEL on --nodes nodes of --hardware."""
    from envman.cli._model import plan_request, resolve_model_arg
    from envman.docker.dockerfile import image_tag
    from envman.errors import UsageError
    from envman.files import atomic_write
    from envman.k8s.manifests import Options, build, check_image, dump, rfc1123
    from envman.k8s.validate import check
    from envman.matrix.combinations import Combination
    from envman.plan.planner import Planner

    rfc1123(namespace, "--namespace")  # bad input fails before anything is planned
    rfc1123(secret, "--secret")
    if name is not None:
        rfc1123(name, "--name")
    if image is not None:
        check_image(image)
    loaded = load(matrix)
    host = target_host(hardware, loaded)
    resolved = resolve_model_arg(loaded, model)
    if resolved.path is not None:
        raise UsageError(f"{model} is a local path; a cluster pulls weights from the hub", hint="name a hub repo id")
    plan = Planner(loaded, host).plan(
        plan_request(
            resolved, engine=engine, version=version, format=format, max_model_len=max_model_len, nodes=nodes,
            trust_remote_code=trust_remote_code, force=force,
        )
    )  # fmt: skip
    for warning in plan.warnings:
        err.print(f"warning: {warning}", markup=False, highlight=False)
    chosen = image or image_tag(Combination(plan.engine, plan.engine_version, plan.variant.name))
    documents = build(
        plan,
        Options(
            image=chosen, namespace=namespace, name=name, port=port, secret=secret, api_key=api_key,
            network_interface=network_interface,
        ),
    )  # fmt: skip
    check(documents)
    text = dump(documents)
    if output is not None:
        atomic_write(output, text)
        err.print(f"wrote {output}", markup=False, highlight=False)
        return
    out.print(text, markup=False, highlight=False, end="", soft_wrap=True)
