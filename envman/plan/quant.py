"""A checkpoint's quantization method against the engine release that would load it.

From ``[engine_rules.E]`` (read from the release's own ``QUANTIZATION_METHODS`` and each
config's ``get_min_capability()``): whether the release registers the checkpoint's
``quant_method`` at all, whether it moved to a plugin package (then the variant's lock carries
the plugin where its ``lock_plugins`` names it, else the plan refuses and names it), and the
compute capability that release, or the plugin, needs.
"""

from __future__ import annotations

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix.engine_rules import QuantMethodRule, QuantPlugin, locked_plugins
from envman.matrix.schema import Accelerator, Artifact, Matrix, Variant


def quant_method_gate(
    matrix: Matrix, host: Host, engine: str, version: Version, artifact: Artifact, variant: Variant | None = None
) -> str | None:
    """``""`` when the release's own rules let ``host`` load the checkpoint, a refusal when they
    do not, None when the release was never probed (the matrix's per-format rule applies)."""
    rules = matrix.engine_rules.get(engine)
    method = artifact.quant_method
    if rules is None or not method or not rules.knows(version):
        return None
    registered: QuantMethodRule | QuantPlugin | None = rules.method(version, method)
    if registered is None:
        plugin = rules.plugin(version, method)
        spans = [str(m.versions) for m in rules.quant_methods if m.method == method]
        last = f"; releases {spans[-1]} have it in-tree" if spans else ""
        if (
            plugin is not None
            and variant is not None
            and plugin.package in locked_plugins(matrix, engine, version, variant)
        ):
            registered = plugin  # the lock carries it: the plugin's own capability floor applies
        elif plugin is not None:
            build = f"the {variant.name} lock" if variant is not None else "this lock"
            return (
                f"{engine} {version} no longer registers quantization method {method!r}: it moved to the plugin "
                f"package {plugin.package} ({plugin.evidence.split(';')[0]}), which {build} does not install{last}"
            )
        else:
            return f"{engine} {version} does not register quantization method {method!r} ({rules.evidence[:60]}…){last}"
    cc = host.min_compute_capability
    if (
        host.accelerator is Accelerator.CUDA
        and registered.min_capability
        and cc is not None
        and cc < registered.min_capability
    ):
        return (
            f"{engine} {version}'s {method} needs compute capability {registered.min_capability} "
            f"(get_min_capability, {registered.evidence.split(';')[-1].strip()}); {host.gpus[0].name} has {cc}"
        )
    return ""


def plugin_note(matrix: Matrix, engine: str, version: Version, artifact: Artifact, variant: Variant) -> str | None:
    """The plan's note when the checkpoint's method comes from a plugin the lock carries."""
    rules = matrix.engine_rules.get(engine)
    method = artifact.quant_method
    if rules is None or not method or not rules.knows(version) or rules.method(version, method) is not None:
        return None
    plugin = rules.plugin(version, method)
    if plugin is None or plugin.package not in locked_plugins(matrix, engine, version, variant):
        return None
    return (
        f"quantization method {method!r} is registered by the plugin {plugin.package}, which the {variant.name} "
        f"lock of {engine} {version} carries ({plugin.evidence.split(';')[0]})"
    )
