"""``[engine_rules.E]``: rules each engine release declares in its own source, as probed.

::

    [engine_rules.vllm]
    probed = ">=0.7.0,<=0.33.0"             # the releases read; outside them nothing is known
    evidence = "..."
    [[engine_rules.vllm.refused_dtypes]]     # config code refuses dtype for model_type
    model_type = "gemma3"
    dtype = "float16"
    versions = ">=0.9.1,<=0.33.0"
    reason = "Numerical instability. ..."
    evidence = "..."
    [[engine_rules.vllm.quant_methods]]      # registered in QUANTIZATION_METHODS
    method = "fp8"
    versions = ">=0.7.0,<0.14.0"
    min_capability = "8.0"                   # get_min_capability(); "" where not a constant
    deprecated = true                        # in DEPRECATED_QUANTIZATION_METHODS (optional)
    evidence = "..."
    [[engine_rules.vllm.quant_plugins]]      # a method that left the tree for a plugin package
    method = "bitsandbytes"
    package = "vllm-bnb-plugin"
    versions = ">=0.28.0"
    min_capability = "7.0"
    evidence = "..."
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envman.matrix.reader import Problems, Reader

if TYPE_CHECKING:
    from envman.matrix.schema import Matrix, Variant

_CAPABILITY = re.compile(r"\d{1,2}\.\d")


@dataclass(frozen=True)
class RefusedDtype:
    model_type: str
    dtype: str
    versions: SpecifierSet
    reason: str
    evidence: str


@dataclass(frozen=True)
class QuantMethodRule:
    method: str
    versions: SpecifierSet
    min_capability: Version | None
    deprecated: bool
    evidence: str


@dataclass(frozen=True)
class QuantPlugin:
    method: str
    package: str
    versions: SpecifierSet
    min_capability: Version | None
    evidence: str


@dataclass(frozen=True)
class EngineRules:
    """One engine's probed rules; queries answer None where the version was not probed."""

    engine: str
    probed: SpecifierSet
    refused_dtypes: tuple[RefusedDtype, ...]
    quant_methods: tuple[QuantMethodRule, ...]
    quant_plugins: tuple[QuantPlugin, ...]
    evidence: str

    def knows(self, version: Version) -> bool:
        return self.probed.contains(version, prereleases=True)

    def refusal(self, version: Version, model_types: tuple[str, ...], dtype: str) -> RefusedDtype | None:
        """The rule by which ``version`` refuses ``dtype`` for any of ``model_types``."""
        return next(
            (
                r
                for r in self.refused_dtypes
                if r.dtype == dtype and r.model_type in model_types and r.versions.contains(version, prereleases=True)
            ),
            None,
        )

    def method(self, version: Version, name: str) -> QuantMethodRule | None:
        return next(
            (m for m in self.quant_methods if m.method == name and m.versions.contains(version, prereleases=True)),
            None,
        )

    def plugin(self, version: Version, name: str) -> QuantPlugin | None:
        return next(
            (p for p in self.quant_plugins if p.method == name and p.versions.contains(version, prereleases=True)),
            None,
        )


def parse_engine_rules(problems: Problems, root: Reader, engines: Mapping[str, object]) -> dict[str, EngineRules]:
    found: dict[str, EngineRules] = {}
    for engine, table in root.table("engine_rules").items():
        where = ("engine_rules", engine)
        if engine not in engines:
            problems.add(where, f"unknown engine {engine!r}")
            continue
        if not isinstance(table, dict):
            problems.add(where, f"expected a table, got {table!r}")
            continue
        r = Reader(problems, table, where)
        dtypes = []
        for i, item in enumerate(r.tables("refused_dtypes")):
            dr = Reader(problems, item, where + ("refused_dtypes", i))
            dtypes.append(
                RefusedDtype(
                    dr.text("model_type"), dr.text("dtype"), dr.spec("versions"), dr.text("reason"), dr.text("evidence")
                )
            )
            dr.done()
        methods = []
        for i, item in enumerate(r.tables("quant_methods")):
            mr = Reader(problems, item, where + ("quant_methods", i))
            methods.append(
                QuantMethodRule(
                    mr.text("method"), mr.spec("versions"), _capability(mr), mr.flag("deprecated"), mr.text("evidence")
                )
            )
            mr.done()
        plugins = []
        for i, item in enumerate(r.tables("quant_plugins")):
            pr = Reader(problems, item, where + ("quant_plugins", i))
            plugins.append(
                QuantPlugin(
                    pr.text("method"), pr.text("package"), pr.spec("versions"), _capability(pr), pr.text("evidence")
                )
            )
            pr.done()
        found[engine] = EngineRules(
            engine, r.spec("probed"), tuple(dtypes), tuple(methods), tuple(plugins), r.text("evidence")
        )
        r.done()
    return found


def _capability(r: Reader) -> Version | None:
    text = r.text("min_capability", "")
    if not text:
        return None
    if not _CAPABILITY.fullmatch(text):
        r.p.add(r.where + ("min_capability",), f"{text!r} is not a compute capability (8.0)")
        return None
    return Version(text)


def locked_plugins(matrix: Matrix, engine: str, version: Version, variant: Variant) -> tuple[str, ...]:
    """The plugin packages ``variant``'s lock carries for ``version``: those its ``lock_plugins``
    names that a quantization method of this release moved to (``quant_plugins``)."""
    rules = matrix.engine_rules.get(engine)
    if rules is None or not variant.lock_plugins:
        return ()
    moved = [p.package for p in rules.quant_plugins if p.versions.contains(version, prereleases=True)]
    return tuple(dict.fromkeys(p for p in moved if p in variant.lock_plugins))
