"""Match an engine's error output against known failure signatures.

The knowledge is matrix.toml's: the ``[[signatures]]`` table (regular expressions with a
cause and a fix) and every family × engine ``known_bad`` entry's ``error`` text. For an
architecture signature (``unknown model architecture: 'gemma3'``) the fix names the
first engine release that supports the architecture, from the family's floor.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from envman.diagnose.facts import computed_fix
from envman.matrix.schema import Family, Matrix, Signature


@dataclass(frozen=True)
class Finding:
    id: str
    cause: str
    fix: str
    line: str  # the log line that matched
    offset: int  # where in the log it matched
    entry: str  # the matrix entry this knowledge comes from
    evidence: str = ""
    family: str | None = None
    engine: str | None = None
    first_version: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "cause": self.cause,
            "fix": self.fix,
            "line": self.line,
            "matrix_entry": self.entry,
            "family": self.family,
            "engine": self.engine,
            "first_version": self.first_version,
            "evidence": self.evidence,
        }


def _line_at(text: str, offset: int) -> str:
    start = text.rfind("\n", 0, offset) + 1
    end = text.find("\n", offset)
    return text[start : end if end != -1 else len(text)].strip()


def _family_by_name(matrix: Matrix, name: str) -> Family | None:
    found = matrix.family_of_architecture(name)
    if found is not None:
        return found
    for family in matrix.families.values():
        if name in family.model_types:
            return family
    return None


def _architecture_finding(
    matrix: Matrix, signature: Signature, index: int, match: re.Match[str], text: str, engine: str | None
) -> Finding:
    arch = match.group("arch")
    family = _family_by_name(matrix, arch)
    line = _line_at(text, match.start())
    engines = [engine] if engine else list(signature.engines) or list(matrix.engines)
    if family is None:
        return Finding(
            id=signature.id,
            cause=f"{signature.cause}: architecture {arch!r} is not in matrix.toml",
            fix=f"{signature.fix}; no engine release is recorded as supporting {arch!r}",
            line=line,
            offset=match.start(),
            entry=f"signatures[{index}]",
            evidence=signature.evidence,
        )
    fixes = []
    entries = []
    first: str | None = None
    for name in engines:
        support = family.engines.get(name)
        if support is None or support.min_version is None:
            continue
        good = f" (known good: {support.known_good[-1]})" if support.known_good else ""
        fixes.append(f"{name}>={support.min_version}{good}")
        entries.append(f"families.{family.name}.engines.{name}")
        first = first or str(support.min_version)
    if fixes:
        fix = f"use {' or '.join(fixes)}: the first release whose code knows {arch!r}"
    else:
        fix = f"{signature.fix}; no release of {', '.join(engines)} is recorded as supporting {family.name}"
    return Finding(
        id=signature.id,
        cause=f"{signature.cause}: {arch!r} ({family.name})",
        fix=fix,
        line=line,
        offset=match.start(),
        entry=", ".join(entries) or f"signatures[{index}]",
        evidence="; ".join(
            s.evidence for s in (family.engines.get(n) for n in engines) if s is not None and s.evidence
        ),
        family=family.name,
        engine=engine or (engines[0] if len(engines) == 1 else None),
        first_version=first,
    )


def _loose(error: str) -> re.Pattern[str]:
    """The literal error text with every run of digits generalised ('layers.0.' ~ 'layers.17.')."""
    parts = re.split(r"(\d+)", error)
    return re.compile("".join(r"\d+" if p.isdigit() else re.escape(p) for p in parts))


def _mentions(family: Family, text: str) -> bool:
    names = family.hf_architectures + family.gguf_architectures + family.model_types + (family.name,)
    # "gemma3" is mentioned by gemma3_mm.py but not by gemma3n: letters and digits continue a name
    return any(re.search(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", text, re.IGNORECASE) for n in names if n)


def diagnose(text: str, matrix: Matrix, engine: str | None = None, family: str | None = None) -> list[Finding]:
    """Every known failure found in ``text``: known-bad versions first, then signatures."""
    findings: list[Finding] = []
    for family_obj in matrix.families.values():
        if family and family_obj.name != family:
            continue
        if not family and not _mentions(family_obj, text):
            continue
        for engine_name, support in family_obj.engines.items():
            if engine and engine_name != engine:
                continue
            for i, bad in enumerate(support.known_bad):
                if not bad.error:
                    continue
                match = _loose(bad.error).search(text)
                if match is None:
                    continue
                fix = (
                    f"use {engine_name}>={bad.fixed_in}"
                    if bad.fixed_in
                    else f"avoid {engine_name} {bad.versions} for {family_obj.name}"
                )
                formats = f" ({', '.join(sorted(f.value for f in bad.formats))} weights)" if bad.formats else ""
                findings.append(
                    Finding(
                        id=f"known-bad:{family_obj.name}:{engine_name}",
                        cause=f"{engine_name} {bad.versions}{formats}: {bad.reason}",
                        fix=fix,
                        line=_line_at(text, match.start()),
                        offset=match.start(),
                        entry=f"families.{family_obj.name}.engines.{engine_name}.known_bad[{i}]",
                        evidence=bad.evidence,
                        family=family_obj.name,
                        engine=engine_name,
                        first_version=str(bad.fixed_in) if bad.fixed_in else None,
                    )
                )
    for index, signature in enumerate(matrix.signatures):
        if engine and signature.engines and engine not in signature.engines:
            continue
        match = re.search(signature.pattern, text)
        if match is None:
            continue
        if signature.kind == "architecture":
            findings.append(_architecture_finding(matrix, signature, index, match, text, engine))
        else:
            computed = computed_fix(matrix, signature.id, match, engine)
            findings.append(
                Finding(
                    id=signature.id,
                    cause=signature.cause,
                    fix=computed or signature.fix,
                    line=_line_at(text, match.start()),
                    offset=match.start(),
                    entry=f"signatures[{index}]",
                    evidence=signature.evidence,
                )
            )
    return findings


def render(findings: list[Finding]) -> str | None:
    """Findings as envman prints them everywhere (smoke, up, image builds): cause, fix, source."""
    if not findings:
        return None
    return "\n".join(f"{f.cause}. Fix: {f.fix} (matrix.toml {f.entry})" for f in findings)
