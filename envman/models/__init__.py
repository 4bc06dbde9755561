"""Any model a user names: the catalog, a hub repo id, a local HF folder or a GGUF file.

:func:`resolve` turns MODEL into a :class:`ResolvedModel`: a :class:`~envman.matrix.schema.Model`
(read from the model's own config.json, safetensors headers or GGUF header, or the curated
catalog entry) and where each fact came from. It sits between the matrix and the planner.
"""

from __future__ import annotations

from envman.models.family import UnknownArchitecture
from envman.models.resolve import resolve
from envman.models.resolved import ResolvedModel, Source, model_json

__all__ = ["ResolvedModel", "Source", "UnknownArchitecture", "model_json", "resolve"]
