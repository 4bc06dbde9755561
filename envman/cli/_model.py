"""MODEL as every command takes it: a catalog name or alias, a hub repo id (``org/name@rev``),
a local HF folder, or a .gguf file — read through :mod:`envman.models`, then planned."""

from __future__ import annotations

from pathlib import Path

from envman.matrix.schema import Matrix
from envman.models import ResolvedModel, Source, resolve
from envman.plan.request import PlanRequest


def resolve_model_arg(matrix: Matrix, spec: str, model_path: Path | str | None = None) -> ResolvedModel:
    """The model MODEL names (``--model-path``: the weights there, MODEL only naming them)."""
    return resolve(matrix, spec, model_path=Path(model_path) if model_path else None)


def local_weights(resolved: ResolvedModel, model_path: Path | str | None) -> Path | None:
    """Where the weights already are: ``--model-path``, or the folder or file MODEL named."""
    if model_path:
        return Path(model_path)
    if resolved.source in (Source.FOLDER, Source.GGUF) and resolved.path is not None:
        return resolved.path
    return None


def plan_request(resolved: ResolvedModel, **choices: object) -> PlanRequest:
    """A plan request for the resolved model, restricted to the weights repo the user named."""
    return PlanRequest(model=resolved.model, weights_repo=resolved.repo, **choices)  # type: ignore[arg-type]
