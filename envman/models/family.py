"""A model's family, through the matrix's architecture names, and the answer when there is none."""

from __future__ import annotations

from collections.abc import Sequence

from envman.errors import UsageError
from envman.matrix.schema import Family, Matrix


def find(matrix: Matrix, architectures: Sequence[str], model_types: Sequence[str]) -> Family | None:
    """The family listing one of ``architectures`` (HF class names or a GGUF architecture).

    ``model_types`` decide only when the config names no architecture: a known model_type
    under an unknown class (``Qwen2ForSequenceClassification``) is another model head.
    """
    for arch in architectures:
        family = matrix.family_of_architecture(arch)
        if family is not None:
            return family
    if not architectures:
        for family in matrix.families.values():
            if any(t in family.model_types for t in model_types):
                return family
    return None


def engines_of(family: Family) -> str:
    floors = [f"{name}>={s.min_version}" for name, s in family.engines.items() if s.min_version is not None]
    return ", ".join(floors) or "no engine release yet"


class UnknownArchitecture(UsageError):
    """A model whose architecture no family of the matrix lists (exit 2)."""

    def __init__(self, message: str, hint: str, architecture: str) -> None:
        super().__init__(message, hint=hint)
        self.architecture = architecture


def unknown(
    matrix: Matrix, where: str, architectures: Sequence[str], model_types: Sequence[str]
) -> UnknownArchitecture:
    named = architectures[0] if architectures else (model_types[0] if model_types else "(none)")
    kind = " / ".join(architectures) or f"model_type {', '.join(model_types) or '(none)'}"
    message = f"{where}: architecture {kind} is in none of the {len(matrix.families)} families of {matrix.path}"
    related = [f for f in matrix.families.values() if any(t in f.model_types for t in model_types)]
    if related:
        family = related[0]
        message += (
            f"; its model_type is that of family {family.name} ({engines_of(family)}), "
            f"whose models are {' / '.join(family.hf_architectures)}: {named} is another model class"
        )
    else:
        message += ", so which engine releases run it is not recorded"
    hint = (
        f"to find out, add [families.NAME] with hf_architectures = [{named!r}] (or gguf_architectures) "
        "to a copy of matrix.toml and run `envman probe NAME --engine ENGINE --matrix COPY` for each engine: "
        "it reads every release's model table from PyPI and names the first that knows it"
    )
    return UnknownArchitecture(message, hint, named)
