"""User overrides of where each engine variant is installed from.

Indexes and find-links differ per site (a corporate mirror, a wheel folder on disk, a
CUDA wheel index). matrix.toml holds the public defaults; a user overrides them per
variant, environment first, then the config file:

    ENVMAN_<ENGINE>_<VARIANT>_INDEX_URL          e.g. ENVMAN_VLLM_CPU_INDEX_URL
    ENVMAN_<ENGINE>_<VARIANT>_EXTRA_INDEX_URLS   space-separated
    ENVMAN_<ENGINE>_<VARIANT>_FIND_LINKS         space-separated

    # ~/.config/envman/config.toml (or $ENVMAN_CONFIG)
    [indexes."vllm.cpu"]
    index_url = "https://mirror.example/simple"
    extra_index_urls = ["https://download.pytorch.org/whl/cpu"]
    find_links = ["/opt/wheels"]

Engine and variant names are upper-cased with ``-`` as ``_`` (llama-cpp-python ->
LLAMA_CPP_PYTHON).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from envman.errors import ConfigError
from envman.matrix.reader import read_toml
from envman.matrix.schema import Engine, Matrix, Variant

FIELDS = ("index_url", "extra_index_urls", "find_links")


def env_prefix(engine: str, variant: str) -> str:
    return f"ENVMAN_{engine}_{variant}_".upper().replace("-", "_")


def configure_hint(engine: str, variant: Variant) -> str:
    """How a user points a vendor variant at its index (environment, or the config file)."""
    key = variant.own_index or "index_url"
    return (
        f'set {env_prefix(engine, variant.name)}{key.upper()} (or {key} in [indexes."{engine}.{variant.name}"] '
        "of ~/.config/envman/config.toml)"
    )


def _config_indexes(matrix: Matrix) -> Mapping[str, Any]:
    """The [indexes] tables of the user's config file, checked against the matrix."""
    from envman import paths

    path = paths.config_file()
    if not path.is_file():
        return {}
    data = read_toml(path)
    indexes = data.get("indexes", {})
    if not isinstance(indexes, dict):
        raise ConfigError(f"{path}: [indexes] must be a table of 'engine.variant' tables")
    known = [f"{e.name}.{v}" for e in matrix.engines.values() for v in e.variants]
    known += [f"{f.name}.{v}" for f in matrix.frontends.values() for v in f.variants]
    for key, table in indexes.items():
        if key not in known:
            import difflib

            close = difflib.get_close_matches(key, known, n=1)
            raise ConfigError(
                f"{path}: indexes.{key!r} names no engine variant",
                hint=(f"did you mean {close[0]!r}? " if close else "") + f"variants: {', '.join(known)}",
            )
        unknown = set(table) - set(FIELDS) if isinstance(table, dict) else {"<not a table>"}
        if unknown:
            raise ConfigError(
                f"{path}: indexes.{key!r} has unknown keys {sorted(unknown)}",
                hint=f"allowed keys: {', '.join(FIELDS)}",
            )
        for field in FIELDS:
            value = table.get(field)
            if value is None:
                continue
            if field == "index_url":
                ok = isinstance(value, str)
            else:
                ok = isinstance(value, list) and all(isinstance(v, str) for v in value)
            if not ok:
                wanted = "a string" if field == "index_url" else "a list of strings"
                raise ConfigError(f"{path}: indexes.{key!r}.{field} must be {wanted}, got {value!r}")
    return indexes


def _override(engine: str, variant: Variant, environ: Mapping[str, str], config: Mapping[str, Any]) -> Variant:
    changes: dict[str, Any] = {}
    table = config.get(f"{engine}.{variant.name}", {})
    for field in FIELDS:
        if field in table:
            value = table[field]
            changes[field] = value if field == "index_url" else tuple(value)
    prefix = env_prefix(engine, variant.name)
    for field in FIELDS:
        value = environ.get(prefix + field.upper())
        if value is not None:
            changes[field] = (value or None) if field == "index_url" else tuple(value.split())
    return dataclasses.replace(variant, **changes) if changes else variant


def apply_overrides(matrix: Matrix, environ: Mapping[str, str]) -> Matrix:
    config = _config_indexes(matrix)
    engines: dict[str, Engine] = {}
    for name, engine in matrix.engines.items():
        variants = {v: _override(name, variant, environ, config) for v, variant in engine.variants.items()}
        engines[name] = dataclasses.replace(engine, variants=variants)
    frontends = {
        name: dataclasses.replace(
            frontend, variants={v: _override(name, var, environ, config) for v, var in frontend.variants.items()}
        )
        for name, frontend in matrix.frontends.items()
    }
    return dataclasses.replace(matrix, engines=engines, frontends=frontends)
