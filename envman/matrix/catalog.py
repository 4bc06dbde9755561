"""The model catalog: a model by name, alias or weights repo; engine names checked with a hint."""

from __future__ import annotations

import difflib

from envman.errors import UsageError
from envman.matrix.schema import Matrix, Model


def find_model(matrix: Matrix, name: str) -> tuple[Model, str | None] | None:
    """The catalog model called ``name`` (name, alias or weights repo id, any case), or None."""
    lowered = name.strip().lower()
    for model in matrix.models.values():
        if model.name.lower() == lowered or lowered in (a.lower() for a in model.aliases):
            return model, None
    for model in matrix.models.values():
        for artifact in model.artifacts:
            if not artifact.local_only and artifact.repo.lower() == lowered:
                return model, artifact.repo
    return None


def unknown_model(matrix: Matrix, name: str, forms: str = "") -> UsageError:
    """The error for a name the catalog does not know, with the closest names."""
    names = sorted(matrix.models)
    close = difflib.get_close_matches(name.strip().lower(), [n.lower() for n in names], n=3, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}? " if close else ""
    return UsageError(f"unknown model {name!r}", hint=f"{hint}`envman models` lists the catalog{forms}")


def resolve_model(matrix: Matrix, name: str) -> tuple[Model, str | None]:
    """A catalog model by name, alias or hub repo id; unknown names get the closest ones.

    Named by a weights repo (``unsloth/gemma-3-27b-it-bnb-4bit``), the repo is returned too:
    the plan must serve those weights, not the model's preferred ones.
    """
    found = find_model(matrix, name)
    if found is None:
        raise unknown_model(matrix, name)
    return found


def check_engine(matrix: Matrix, engine: str) -> None:
    if engine not in matrix.engines:
        close = difflib.get_close_matches(engine, list(matrix.engines), n=2)
        hint = f"did you mean {' or '.join(close)}? " if close else ""
        raise UsageError(f"unknown engine {engine!r}", hint=f"{hint}engines: {', '.join(matrix.engines)}")
