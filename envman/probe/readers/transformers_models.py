"""transformers: the ``model_type`` values ``AutoConfig`` knows.

They are the keys of ``CONFIG_MAPPING_NAMES`` (``("gemma3_text", "Gemma3TextConfig")`` …),
defined in ``transformers/models/auto/configuration_auto.py`` and, in 5.x, generated into
``auto_mappings.py`` and extended by ``CONFIG_MAPPING_NAMES.update({...})``. One model folder
can hold several types (``models/gemma3/`` holds ``gemma3`` and ``gemma3_text``), so the
folder names alone would miss some.
"""

from __future__ import annotations

import ast
from pathlib import Path

from envman.probe.readers import Catalog, Vocabulary, reader
from envman.probe.readers._archive import members, parse, pure_wheel, string_keys

_AUTO = "transformers/models/auto/"
_FILES = {f"{_AUTO}configuration_auto.py", f"{_AUTO}auto_mappings.py"}
_TABLE = "CONFIG_MAPPING_NAMES"


@reader(
    "transformers-models",
    vocabulary=Vocabulary.MODEL_TYPES,
    choose=pure_wheel,
    claim="maps model_type",
    revision=2,
)
def read_model_types(artifact: Path) -> Catalog:
    found: set[str] = set()
    sources: list[str] = []
    for name, content in members(artifact, lambda path: path in _FILES):
        tree = parse(content, name)
        types = _config_mapping_keys(tree) if tree else set()
        if types:
            found |= types
            sources.append(name)
    return Catalog(frozenset(found), f"{' and '.join(sorted(sources)) or 'no'} {_TABLE}")


def _config_mapping_keys(tree: ast.Module) -> set[str]:
    keys: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == _TABLE for t in node.targets):
            keys |= _entries(node.value)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "update"
            and isinstance(node.func.value, ast.Name)
            and node.func.value.id == _TABLE
        ):
            for argument in node.args:
                keys |= _entries(argument)
    return keys


def _entries(node: ast.expr) -> set[str]:
    """Keys under ``node``: ``OrderedDict([("a", "AConfig"), ...])`` pairs or ``{"a": ...}`` dicts."""
    keys: set[str] = set()
    for item in ast.walk(node):
        if isinstance(item, ast.Tuple) and len(item.elts) == 2:
            first = item.elts[0]
            if isinstance(first, ast.Constant) and isinstance(first.value, str):
                keys.add(first.value)
        elif isinstance(item, ast.Dict):
            keys |= string_keys(item)
    return keys
