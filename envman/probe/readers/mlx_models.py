"""mlx-lm: the ``model_type`` values it loads.

``mlx_lm/models/<model_type>.py`` implements one; ``MODEL_REMAPPING`` (wherever it is
defined in ``mlx_lm/``) sends others to an existing module (``mistral`` → ``llama``).
Both count. A few helper modules (``cache``, ``switch_layers``) are not model types and
are left out; any that slip through only add names no family uses.
"""

from __future__ import annotations

import ast
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import members, parse, pure_wheel, string_keys

_MODELS = "mlx_lm/models/"
_NOT_MODELS = {"__init__", "base", "cache", "rope_utils", "switch_layers", "activations", "pipeline"}


@reader("mlx-models", vocabulary=Vocabulary.MODEL_TYPES, choose=pure_wheel, claim="implements model_type")
def read_model_modules(artifact: Path) -> Catalog:
    found: set[str] = set()
    for name, content in members(artifact, lambda path: path.startswith("mlx_lm/") and path.endswith(".py")):
        if name.startswith(_MODELS) and name.count("/") == 2:
            stem = name.removeprefix(_MODELS).removesuffix(".py")
            if stem not in _NOT_MODELS:
                found.add(stem)
        if b"MODEL_REMAPPING" in content:
            tree = parse(content, name)
            found |= _remapped(tree) if tree else set()
    return Catalog(frozenset(found), f"{_MODELS}<model_type>.py or MODEL_REMAPPING")


def _remapped(tree: ast.Module) -> set[str]:
    for node in tree.body:
        if (
            isinstance(node, ast.Assign)
            and any(isinstance(t, ast.Name) and t.id == "MODEL_REMAPPING" for t in node.targets)
            and isinstance(node.value, ast.Dict)
        ):
            return string_keys(node.value)
    return set()
