"""A checkpoint's quantization method against the engine release that would load it.

From ``[engine_rules.E]`` (read from the release's own ``QUANTIZATION_METHODS`` and each
config's ``get_min_capability()``): whether the release registers the checkpoint's
``quant_method`` at all, whether it moved to a plugin package (which envman's lock does not
carry, so the plan refuses and names it), and the compute capability that release needs.
"""

from __future__ import annotations

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix.schema import Accelerator, Artifact, Matrix


def quant_method_gate(matrix: Matrix, host: Host, engine: str, version: Version, artifact: Artifact) -> str | None:
    """``""`` when the release's own rules let ``host`` load the checkpoint, a refusal when they
    do not, None when the release was never probed (the matrix's per-format rule applies)."""
    rules = matrix.engine_rules.get(engine)
    method = artifact.quant_method
    if rules is None or not method or not rules.knows(version):
        return None
    registered = rules.method(version, method)
    if registered is None:
        plugin = rules.plugin(version, method)
        spans = [str(m.versions) for m in rules.quant_methods if m.method == method]
        last = f"; releases {spans[-1]} have it in-tree" if spans else ""
        if plugin is not None:
            return (
                f"{engine} {version} no longer registers quantization method {method!r}: it moved to the plugin "
                f"package {plugin.package} ({plugin.evidence.split(';')[0]}), which this lock does not install{last}"
            )
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
