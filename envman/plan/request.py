"""What a caller asks the planner: the model, and the choices it pins or leaves open.

Only decision inputs live here. Where the weights lie, the address and port a server binds,
its served name, API key and extra engine arguments are launch bindings
(:class:`envman.engines.launch.Bindings`), not planning questions.
"""

from __future__ import annotations

from dataclasses import dataclass

from envman.errors import UsageError
from envman.matrix.schema import Format, Model


@dataclass(frozen=True)
class PlanRequest:
    model: str | Model  # a catalog name, alias or weights repo, or a model already resolved
    engine: str | None = None
    version: str | None = None
    format: str | None = None  # "gguf" or "gguf:Q4_K_M"
    max_model_len: int | None = None
    tensor_parallel_size: int | None = None
    nodes: int | None = None  # at most this many identical nodes of the target (None: one)
    local_nodes: bool = False  # exactly ``nodes`` ranks, all on this CPU host (up --local-nodes: a test of the launch)
    memory_utilization: float | None = None
    trust_remote_code: bool = False
    force: bool = False
    weights_repo: str | None = None  # with a resolved model: serve these weights (the repo the user named)
    frontend: str | None = None  # a serving layer over the engine: "xinference" or "xinference==1.4.0"


def parse_format(text: str | None) -> tuple[Format | None, str | None]:
    if not text:
        return None, None
    fmt_text, _, quant = text.partition(":")
    try:
        fmt = Format(fmt_text.lower())
    except ValueError:
        raise UsageError(
            f"unknown format {fmt_text!r}",
            hint=f"formats: {', '.join(f.value for f in Format)} (GGUF with a quantization: gguf:Q4_K_M)",
        ) from None
    return fmt, quant or None
