"""Memory fit: the longest context, then the fewest nodes and smallest layout whose estimate fits.

Within one node the planner tries tensor-parallel sizes (the smallest that fits). A model that
does not fit one node is split over several identical nodes only the way the engine's release
can (``[[engines.E.multinode]]`` in matrix.toml): tensor parallel inside each node, and across
nodes pipeline parallel (layers), data parallel with expert parallel (MoE), or, for releases
with nothing else, tensor parallel over every GPU. Tensor parallelism across nodes is never
proposed where the release has another way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from packaging.version import Version

from envman.hardware.host import GIB, Host
from envman.matrix.schema import Accelerator, Artifact, CrossNode, Engine, Matrix, Model, MultiNode
from envman.plan.memory import MemoryEstimate, kv_cache_bytes, weight_bytes
from envman.plan.request import PlanRequest

TP_SIZES = (1, 2, 4, 8, 16)
FALLBACK_CONTEXTS = (8192, 4096, 2048)
NODE_GPUS = 8  # the most GPUs of one kind a node holds (HGX/DGX boards): beyond it, more nodes
MAX_NODES = 64  # how far the "needs N nodes" hint looks


@dataclass(frozen=True)
class Fit:
    """A layout that fits (or, forced, the one closest to fitting)."""

    tensor_parallel_size: int
    estimate: MemoryEstimate
    wanted_context: int  # the context asked for before any reduction
    nodes: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    multinode: MultiNode | None = None  # how the nodes work together (None: one node)


@dataclass(frozen=True)
class _Layout:
    tp: int
    devices: int  # GPUs the model is spread over, on every node together
    device_bytes: int
    nodes: int = 1
    pp: int = 1
    dp: int = 1
    multinode: MultiNode | None = None


def is_moe(model: Model) -> bool:
    return model.num_experts > 0 or model.active_params_b < model.params_b


def fit(
    matrix: Matrix,
    host: Host,
    engine: Engine,
    model: Model,
    artifact: Artifact,
    dtype: str | None,
    request: PlanRequest,
    force: bool = False,
    *,
    version: Version | None = None,
) -> Fit | str:
    """The longest planned context, then the fewest nodes and smallest TP that fit, or why none does."""
    planner = matrix.planner
    rule = matrix.dtypes.get(dtype) if dtype else None
    dtype_bytes = rule.bytes if rule else 2.0
    weights = weight_bytes(model, artifact, dtype_bytes, matrix)
    overhead = int(planner.overhead_gib * GIB)
    base = min(planner.default_max_model_len, model.max_context)
    fallbacks = [base] + [c for c in FALLBACK_CONTEXTS if c < base]
    contexts = [request.max_model_len] if request.max_model_len else fallbacks
    wanted_nodes = request.nodes or 1
    if host.accelerator is Accelerator.CUDA:
        utilization = request.memory_utilization or planner.gpu_memory_utilization
        label = host.gpus[0].name
        layouts = _node_layouts(host, engine, model, request)
        mechanisms = engine.multinode_for(version) if version is not None and engine.tensor_parallel else ()
        for nodes in range(2, wanted_nodes + 1):
            layouts += _multinode_layouts(host, model, request, mechanisms, nodes)
    else:
        utilization = request.memory_utilization or planner.cpu_memory_utilization
        label = "CPU RAM"
        mechanisms = ()
        layouts = [_Layout(1, 1, host.cpu.memory_total_bytes)]
        if request.local_nodes and wanted_nodes > 1:
            mechanisms = engine.multinode_for(version) if version is not None and engine.tensor_parallel else ()
            layouts = _local_layouts(host, model, mechanisms, wanted_nodes)
            if not layouts:
                return (
                    f"{engine.name} {version} has no multi-node mechanism in matrix.toml "
                    f"that splits {model.name} over {wanted_nodes} nodes"
                )

    def estimate(layout: _Layout, tokens: int) -> MemoryEstimate:
        return _estimate(model, weights, overhead, label, utilization, layout, tokens)

    last: MemoryEstimate | None = None
    for tokens in contexts:
        for layout in layouts:
            guess = estimate(layout, tokens)
            if last is None or tokens == contexts[0]:
                last = guess
            if guess.fits:
                return Fit(layout.tp, guess, contexts[0], layout.nodes, layout.pp, layout.dp, layout.multinode)
    assert last is not None
    if force:
        chosen = layouts[-1]
        return Fit(chosen.tp, last, contexts[0], chosen.nodes, chosen.pp, chosen.dp, chosen.multinode)
    return f"does not fit: {last.explain()}" + _bigger_hint(
        host, engine, model, request, mechanisms, version, lambda layout: estimate(layout, contexts[0]).fits
    )


def _node_layouts(host: Host, engine: Engine, model: Model, request: PlanRequest) -> list[_Layout]:
    """The layouts of one node: every tensor-parallel size, or layers over every GPU."""
    per_device = host.gpu_memory_bytes
    gpu_count = len(host.gpus)
    if not engine.tensor_parallel:
        # llama.cpp and transformers split layers over every GPU (no tensor parallelism).
        return [_Layout(1, gpu_count, per_device)]
    if request.tensor_parallel_size:  # checked against heads and GPUs in plan()
        sizes = [request.tensor_parallel_size]
    else:
        sizes = [n for n in TP_SIZES if n <= gpu_count and model.attention_heads % n == 0]
    return [_Layout(n, n, per_device) for n in sizes]


def _node_tp(gpus: int, model: Model, request: PlanRequest) -> int | None:
    """Tensor parallel inside each node of a multi-node layout: the most GPUs of a node that divide the heads."""
    if request.tensor_parallel_size:
        return request.tensor_parallel_size
    sizes = [n for n in TP_SIZES if n <= gpus and model.attention_heads % n == 0]
    return sizes[-1] if sizes else None


def _multinode_layouts(
    host: Host, model: Model, request: PlanRequest, mechanisms: tuple[MultiNode, ...], nodes: int
) -> list[_Layout]:
    tp = _node_tp(len(host.gpus), model, request)
    if tp is None:
        return []
    per_device = host.gpu_memory_bytes
    out: list[_Layout] = []
    for mechanism in mechanisms:
        if mechanism.moe_only and not is_moe(model):
            continue
        if mechanism.across is CrossNode.PIPELINE and model.layers >= nodes:
            out.append(_Layout(tp, tp * nodes, per_device, nodes, pp=nodes, multinode=mechanism))
        elif mechanism.across is CrossNode.DATA:
            out.append(_Layout(tp, tp * nodes, per_device, nodes, dp=nodes, multinode=mechanism))
        elif mechanism.across is CrossNode.TENSOR and model.attention_heads % (tp * nodes) == 0:
            out.append(_Layout(tp * nodes, tp * nodes, per_device, nodes, multinode=mechanism))
    return out


def _local_layouts(host: Host, model: Model, mechanisms: tuple[MultiNode, ...], nodes: int) -> list[_Layout]:
    """Exactly ``nodes`` ranks on this CPU host (``up --local-nodes``), sharing its RAM: one pipeline
    stage or data-parallel rank each, the way the release splits a model across nodes."""
    share = host.cpu.memory_total_bytes // nodes
    out: list[_Layout] = []
    for mechanism in mechanisms:
        if mechanism.moe_only and not is_moe(model):
            continue
        if mechanism.across is CrossNode.PIPELINE and model.layers >= nodes:
            out.append(_Layout(1, nodes, share, nodes, pp=nodes, multinode=mechanism))
        elif mechanism.across is CrossNode.DATA:
            out.append(_Layout(1, nodes, share, nodes, dp=nodes, multinode=mechanism))
    return out


def _estimate(
    model: Model, weights: int, overhead: int, label: str, utilization: float, layout: _Layout, tokens: int
) -> MemoryEstimate:
    replicated = 0
    if layout.dp > 1:
        # Attention and the shared layers are replicated on every data-parallel rank; only the
        # experts are sharded over all GPUs. The active parameters bound the replicated part
        # from above (they also count the experts a token is routed to): an upper bound.
        replicated = int(weights * min(1.0, model.active_params_b / model.params_b))
    return MemoryEstimate(
        weights_bytes=weights,
        kv_cache_bytes=kv_cache_bytes(model, tokens),
        overhead_bytes=overhead,
        devices=layout.devices,
        device_label=label,
        available_bytes=int(layout.device_bytes * utilization),
        utilization=utilization,
        max_model_len=tokens,
        nodes=layout.nodes,
        replicas=layout.dp,
        replicated_weights_bytes=replicated,
    )


def _bigger_hint(
    host: Host,
    engine: Engine,
    model: Model,
    request: PlanRequest,
    mechanisms: tuple[MultiNode, ...],
    version: Version | None,
    check: Callable[[_Layout], bool],
) -> str:
    """What would fit: more GPUs in one node (up to NODE_GPUS), else how many nodes."""
    if host.accelerator is not Accelerator.CUDA or not host.gpus:
        return ""
    gpu = host.gpus[0].name
    per_device = host.gpu_memory_bytes
    have = len(host.gpus)
    for n in TP_SIZES:
        if n <= have or n > NODE_GPUS:
            continue
        if engine.tensor_parallel:
            if model.attention_heads % n:
                continue
            layout = _Layout(n, n, per_device)
            what = f"tensor_parallel_size {n}"
        else:
            layout = _Layout(1, n, per_device)
            what = f"{n} GPUs"
        if check(layout):
            return f"; {n}x {gpu} would fit ({what})"
    if not engine.tensor_parallel:
        return ""
    if not mechanisms:
        if version is None:
            return ""
        return f"; {engine.name} {version} has no multi-node mechanism recorded in matrix.toml"
    per_node = max(have, NODE_GPUS)
    node = replace(host, gpus=host.gpus[:1] * per_node)
    start = (request.nodes or 1) + 1
    for nodes in range(max(2, start), MAX_NODES + 1):
        for layout in _multinode_layouts(node, model, request, mechanisms, nodes):
            if check(layout):
                return f"; {nodes} nodes of {per_node}x {gpu} would fit (--hardware {gpu}x{per_node} --nodes {nodes})"
    return ""
