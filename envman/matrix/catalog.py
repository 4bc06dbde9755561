"""The model catalog: a model by name, alias or weights repo; engine names checked with a hint."""

from __future__ import annotations

import difflib

from envman.errors import UsageError
from envman.matrix.schema import Matrix, Model


def resolve_model(matrix: Matrix, name: str) -> tuple[Model, str | None]:
    """A catalog model by name, alias or hub repo id; unknown names get the closest ones.

    Named by a weights repo (``unsloth/gemma-3-27b-it-bnb-4bit``), the repo is returned too:
    the plan must serve those weights, not the model's preferred ones.
    """
    wanted = name.strip()
    lowered = wanted.lower()
    for model in matrix.models.values():
        if model.name.lower() == lowered or lowered in (a.lower() for a in model.aliases):
            return model, None
    for model in matrix.models.values():
        for artifact in model.artifacts:
            if not artifact.local_only and artifact.repo.lower() == lowered:
                return model, artifact.repo
    names = sorted(matrix.models)
    close = difflib.get_close_matches(lowered, [n.lower() for n in names], n=3, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}? " if close else ""
    raise UsageError(f"unknown model {name!r}", hint=f"{hint}`envman models` lists the catalog")


def check_engine(matrix: Matrix, engine: str) -> None:
    if engine not in matrix.engines:
        close = difflib.get_close_matches(engine, list(matrix.engines), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"unknown engine {engine!r}", hint=f"{hint}engines: {', '.join(matrix.engines)}")
