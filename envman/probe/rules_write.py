"""Probed engine rules as matrix data: runs of releases that agree, written into ``matrix.toml``.

Each rule holds over a run of consecutive probed releases (``versions = ">=0.9.1,<0.10.2"``; the
newest run ends at the newest release read, ``<=0.33.0``, since later ones are unknown), with
the member and line of its first and last release as evidence. Written at the end of the
file (``[engine_rules.E]``), keeping the rest as it was, like :mod:`envman.probe.write`.
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.items import AoT, Table

from envman.errors import ConfigError
from envman.files import atomic_write
from envman.probe.engine_rules import EngineRules, PluginMethod, RulesProbe


@dataclass(frozen=True)
class Span:
    """One rule over a run of releases: ``key`` is what they agree on."""

    key: tuple[Hashable, ...]
    versions: str  # ">=0.9.1,<0.10.2"
    first: EngineRules
    last: EngineRules


def spans(rules: Sequence[EngineRules], key: Callable[[EngineRules], tuple[Hashable, ...] | None]) -> list[Span]:
    """Runs of consecutive releases (oldest first) with the same non-None ``key``."""
    runs: list[tuple[tuple[Hashable, ...], int, int]] = []
    for i, release in enumerate(rules):
        value = key(release)
        if value is None:
            continue
        if runs and runs[-1][0] == value and runs[-1][2] == i - 1:
            runs[-1] = (value, runs[-1][1], i)
        else:
            runs.append((value, i, i))
    out = []
    for value, start, end in runs:
        upper = f"<{rules[end + 1].version}" if end + 1 < len(rules) else f"<={rules[end].version}"
        out.append(Span(value, f">={rules[start].version},{upper}", rules[start], rules[end]))
    return out


def rules_tables(probe: RulesProbe, plugins: Sequence[PluginMethod], today: datetime.date | None = None) -> Table:
    """``[engine_rules.vllm]``: what was read, refused dtypes, methods and their plugins."""
    rules = probe.rules
    table = tomlkit.table(is_super_table=False)
    stamp = (today or datetime.date.today()).isoformat()
    table["probed"] = f">={rules[0].version},<={rules[-1].version}"
    table["evidence"] = (
        f"{len(rules)} wheels of {probe.engine} (Python members read by range request): the float16 table of "
        f"vllm/config*.py, QUANTIZATION_METHODS and get_quantization_config of {rules[0].quant_member.split(':')[0]}, "
        f"each config class's get_min_capability() (envman probe --engine-rules, {stamp})"
    )
    dtypes = AoT([])
    model_types = sorted({d.model_type for r in rules for d in r.refused_dtypes})
    for model_type in model_types:

        def refused(release: EngineRules, model_type: str = model_type) -> tuple[Hashable, ...] | None:
            found = next((d for d in release.refused_dtypes if d.model_type == model_type), None)
            return None if found is None else (found.dtype, found.reason)

        for span in spans(rules, refused):
            first = next(d for d in span.first.refused_dtypes if d.model_type == model_type)
            last = next(d for d in span.last.refused_dtypes if d.model_type == model_type)
            entry = tomlkit.table()
            entry["model_type"] = model_type
            entry["dtype"] = str(span.key[0])
            entry["versions"] = span.versions
            entry["reason"] = str(span.key[1])
            entry["evidence"] = (
                f"{span.first.wheel} {first.member} l.{first.line}; {span.last.wheel} {last.member} l.{last.line}; "
                f"refused at {span.last.refusal_message} ('does not support float16')"
            )
            dtypes.append(entry)
    table["refused_dtypes"] = dtypes
    methods = AoT([])
    names = sorted({m.name for r in rules for m in r.quant_methods})
    for name in names:

        def registered(release: EngineRules, name: str = name) -> tuple[Hashable, ...] | None:
            method = release.method(name)
            return None if method is None else (method.min_capability or "", name in release.deprecated)

        for span in spans(rules, registered):
            head, tail = span.first.method(name), span.last.method(name)
            assert head is not None, "the span's key says its releases register the method"
            assert tail is not None, "the span's key says its releases register the method"
            entry = tomlkit.table()
            entry["method"] = name
            entry["versions"] = span.versions
            entry["min_capability"] = str(span.key[0])
            if span.key[1]:
                entry["deprecated"] = True
            entry["evidence"] = (
                f"{span.first.wheel} {span.first.quant_member} QUANTIZATION_METHODS, {head.config_class} "
                f"{_where(head.member, head.line, head.note)}; {span.last.wheel} {tail.config_class} "
                f"{_where(tail.member, tail.line, tail.note)}"
            )
            methods.append(entry)
    table["quant_methods"] = methods
    moved = AoT([])
    for plugin in plugins:
        in_tree = [i for i, r in enumerate(rules) if r.method(plugin.method) is not None]
        if not in_tree or in_tree[-1] + 1 >= len(rules):
            continue  # never in vLLM's own list, or still there: the plugin is not where it moved
        last_in_tree, first_gone = rules[in_tree[-1]], rules[in_tree[-1] + 1]
        entry = tomlkit.table()
        entry["method"] = plugin.method
        entry["package"] = plugin.package
        entry["versions"] = f">={first_gone.version}"
        entry["min_capability"] = plugin.min_capability or ""
        entry["evidence"] = (
            f"{plugin.method!r} is in QUANTIZATION_METHODS up to {last_in_tree.version}, not in {first_gone.wheel}; "
            f"{plugin.evidence}"
        )
        moved.append(entry)
    table["quant_plugins"] = moved
    return table


def _where(member: str, line: int, note: str) -> str:
    text = f"{member} l.{line}" if line else member
    return f"{text} ({note})" if note else text


def write_engine_rules(matrix: Path, probe: RulesProbe, plugins: Sequence[PluginMethod]) -> int:
    """Replace ``engine_rules.<engine>`` in ``matrix``; returns how many rules were written."""
    if not probe.rules:
        raise ConfigError(f"no {probe.engine} release was read: nothing to write")
    document = tomlkit.parse(matrix.read_text(encoding="utf-8"))
    if "engine_rules" not in document:
        document.add(tomlkit.nl())
        document.add(tomlkit.comment("Per-release engine rules read from the engines' own source"))
        document.add(
            tomlkit.comment(
                "(envman probe --engine-rules --engine vllm --write); the planner's dtype and quantization gates"
            )
        )
        document["engine_rules"] = tomlkit.table(is_super_table=True)
    root = document["engine_rules"]
    if not isinstance(root, Table):
        raise ConfigError(f"{matrix}: engine_rules is not a table")
    table = rules_tables(probe, plugins)
    root[probe.engine] = table
    atomic_write(matrix, tomlkit.dumps(document))
    return sum(len(table[key]) for key in ("refused_dtypes", "quant_methods", "quant_plugins"))
