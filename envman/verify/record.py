"""``--record``: commit the evidence, and write what it proves into matrix.toml.

Each run's evidence record is copied into ``evidence/<id>.json`` beside matrix.toml, where
``id`` is the first 12 hex digits of the sha256 of its canonical JSON (the same record always
gets the same name; the local log path is left out, its tail kept). matrix.toml (through
tomlkit, comments and layout kept) then gets, per family × engine:

- each pass as ``[[…verified]]``: version, variant, lock digest, date, hardware, evidence;
- each failure as ``[[…known_bad]]``: contiguous swept versions failing with the same engine
  error become one range, with the engine's own error line, the diagnosis as reason, the next
  passing version as ``fixed_in`` and the evidence of every failing run, newest first; a
  failure below the family's floor instead joins the floor's ``evidence`` (it proves it);
- ``known_good``: kept, less versions now known bad, plus the newest verified release of each
  major.minor line (the combinations envman locks, images and lists in CI).

Another form of a family's smoke model (smoke-gemma3-vision) gets ``verified`` entries with
its ``model``; its failures are reported, not written as known_bad (a family's known_bad
refuses the engine release for every model of the family, the text ones too), and its passes
do not move known_good.

Entries written here are the ones whose ``evidence`` names a file under ``evidence/``; a
re-record replaces those covering the versions it ran (deleting the records nothing names
any more), and leaves hand-written ones alone.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from envman import paths
from envman.errors import ConfigError
from envman.files import atomic_write, ensure_dir
from envman.hardware.host import Host
from envman.verify.cases import Outcome

EVIDENCE_DIR = "evidence"
REFERENCE = re.compile(r"evidence/([0-9a-f]{12})\.json")


def evidence_dir(matrix_path: Path) -> Path:
    return matrix_path.parent / EVIDENCE_DIR


def committed_record(document: dict[str, Any]) -> dict[str, Any]:
    """The record as committed: without the local log path (ENVMAN_HOME), home paths masked, the
    lockfile named relative to the repository (not the checkout it was built from)."""
    kept = {k: v for k, v in document.items() if k != "log"}
    for section in ("environment", "lock"):
        part = kept.get(section)
        if isinstance(part, dict) and isinstance(part.get("lockfile"), str) and "/lockfiles/" in part["lockfile"]:
            kept[section] = {**part, "lockfile": f"lockfiles/{Path(part['lockfile']).name}"}
    text = json.dumps(kept, sort_keys=True)
    home = str(paths.home())
    if home and home != "/":
        text = text.replace(json.dumps(home)[1:-1], "$ENVMAN_HOME")
    loaded: dict[str, Any] = json.loads(text)
    return loaded


def evidence_id(record: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:12]


def commit_evidence(matrix_path: Path, outcomes: Iterable[Outcome]) -> dict[str, Path]:
    """Copy each run's record into ``evidence/``; the committed path per cell key."""
    folder = evidence_dir(matrix_path)
    links: dict[str, Path] = {}
    for o in outcomes:
        if o.status == "skip" or not o.evidence:
            continue
        try:
            document = json.loads(Path(o.evidence).read_text(encoding="utf-8"))
        except (OSError, ValueError) as error:
            raise ConfigError(
                f"the evidence of {o.case.label} cannot be read: {o.evidence}: {error}",
                hint="run the cell again: `envman verify --fresh` with the same selection",
            ) from None
        record = committed_record(document)
        target = folder / f"{evidence_id(record)}.json"
        if not target.exists():
            ensure_dir(folder)
            atomic_write(target, json.dumps(record, indent=1, sort_keys=True) + "\n")
        links[o.case.key] = target
    return links


def references(matrix_text: str) -> set[str]:
    """Every evidence id matrix.toml names."""
    return set(REFERENCE.findall(matrix_text))


def orphans(matrix_path: Path) -> tuple[set[str], set[str]]:
    """(ids named but missing from evidence/, files in evidence/ nothing names)."""
    named = references(matrix_path.read_text(encoding="utf-8"))
    present = {p.stem for p in evidence_dir(matrix_path).glob("*.json")}
    return named - present, present - named


# -- matrix.toml -------------------------------------------------------------------------


@dataclass
class _Cell:
    version: Version
    variant: str
    outcome: Outcome
    reference: str


@dataclass
class _Touched:
    cells: list[_Cell] = field(default_factory=list)


def _recorded(entry: Any) -> bool:
    return bool(REFERENCE.search(str(entry.get("evidence", ""))))


def _masked(text: str) -> str:
    home = str(paths.home())
    return text.replace(home, "$ENVMAN_HOME") if home and home != "/" else text


def _ranges(cells: list[_Cell], swept: list[Version]) -> list[tuple[list[_Cell], Version | None]]:
    """Failing cells in runs of neighbouring swept versions with the same error; each with the next pass."""
    order = sorted(swept)
    passes = {c.version for c in cells if c.outcome.status == "pass"}
    runs: list[tuple[list[_Cell], Version | None]] = []
    current: list[_Cell] = []
    failing = {c.version: c for c in cells if c.outcome.status == "fail"}

    def close(after: Version) -> None:
        nonlocal current
        if current:
            later = [v for v in order if v > current[-1].version and v in passes]
            runs.append((current, later[0] if later else None))
        current = []

    for version in order:
        cell = failing.get(version)
        if cell is None:
            close(version)
            continue
        if current and (current[-1].outcome.error or "") != (cell.outcome.error or ""):
            close(version)
        current.append(cell)
    if current:
        close(order[-1])
    return runs


def _spec(run: list[_Cell]) -> str:
    low, high = run[0].version, run[-1].version
    return f"=={low}" if low == high else f">={low},<={high}"


def record(
    matrix_path: Path, outcomes: list[Outcome], host: Host, when: dt.datetime
) -> tuple[int, int, dict[str, Path]]:
    """Commit the evidence and write verified / known_bad / known_good; (passes, failures, links)."""
    import tomlkit

    ran = [o for o in outcomes if o.status in ("pass", "fail") and o.evidence and not o.timed_out]
    # another form's failure is not written (see the docstring): nothing would name its evidence
    ran = [o for o in ran if o.case.primary or o.status == "pass"]
    links = commit_evidence(matrix_path, ran)
    if not ran:
        return 0, 0, links
    text = matrix_path.read_text(encoding="utf-8")
    named_before = references(text)
    doc = tomlkit.parse(text)
    hardware = f"{host.describe()}; {host.cpu.model}".strip("; ")
    touched: dict[tuple[str, str, str], _Touched] = {}
    for o in ran:
        ref = f"{EVIDENCE_DIR}/{links[o.case.key].name}"
        form = "" if o.case.primary else o.case.model
        touched.setdefault((o.case.family, o.case.engine, form), _Touched()).cells.append(
            _Cell(o.case.version, o.case.variant, o, ref)
        )
    passes = failures = 0
    for (family, engine, form), t in sorted(touched.items()):
        support = doc["families"][family]["engines"][engine]
        swept = {c.version for c in t.cells}
        verified = tomlkit.aot()
        for e in support.get("verified", []):
            same = [c for c in t.cells if str(e["version"]) == str(c.version) and e["variant"] == c.variant]
            if not (same and str(e.get("model", "")) == form):
                verified.append(e)
        for c in sorted(t.cells, key=lambda c: c.version):
            if c.outcome.status != "pass":
                continue
            entry = tomlkit.table()
            entry["version"] = str(c.version)
            entry["variant"] = c.variant
            if form:
                entry["model"] = form
            entry["lock"] = c.outcome.lock_digest or ""
            entry["date"] = (c.outcome.when or when.isoformat())[:10]
            entry["hardware"] = hardware
            entry["evidence"] = c.reference
            verified.append(entry)
            passes += 1
        if len(verified):
            support["verified"] = verified
        if form:  # another form of the smoke model: only its passes are written (see the docstring)
            continue
        bad = tomlkit.aot()
        for e in support.get("known_bad", []):
            if not (_recorded(e) and any(v in SpecifierSet(str(e["versions"])) for v in swept)):
                bad.append(e)
        floor_runs = [c for c in t.cells if c.outcome.status == "fail" and c.outcome.case.below_floor]
        _floor_evidence(support, floor_runs)
        failures += len(floor_runs)
        above = [c for c in t.cells if not c.outcome.case.below_floor]
        for run, fixed in _ranges(above, sorted(c.version for c in above)):
            newest = run[-1]
            entry = tomlkit.table()
            entry["versions"] = _spec(run)
            why = _masked(newest.outcome.cause or newest.outcome.error or "failed")
            entry["reason"] = f"envman verify: smoke-{family} failed on {newest.variant}: {why}"
            if newest.outcome.error:  # the engine's own line; none when it died silent (SIGILL)
                entry["error"] = _masked(newest.outcome.error)
            if fixed is not None:
                entry["fixed_in"] = str(fixed)
            entry["evidence"] = ", ".join(c.reference for c in reversed(run))  # newest first
            bad.append(entry)
            failures += len(run)
        if len(bad):
            support["known_bad"] = bad
        elif "known_bad" in support:
            del support["known_bad"]
        _known_good(support, [c for c in t.cells if c.outcome.status == "pass"])
    written = spaced(tomlkit.dumps(doc))
    atomic_write(matrix_path, written)
    for stale in named_before - references(written):  # replaced entries' records: nothing names them now
        (evidence_dir(matrix_path) / f"{stale}.json").unlink(missing_ok=True)
    return passes, failures, links


_HEADER_AFTER_VALUE = re.compile(r"(?m)^([^\n#\[][^\n]*)\n(\[)")
_BLANKS_BEFORE_HEADER = re.compile(r"\n{3,}(?=\[)")


def spaced(text: str) -> str:
    """One blank line before each table header that follows a value. tomlkit appends a new
    ``[[…verified]]`` right after the table before it, and that table's blank line moves up with
    each append (two, three … blank lines after a few records). Whitespace only: where a change
    would reach into a multi-line string, the text is kept as it is."""
    import tomllib

    out = _BLANKS_BEFORE_HEADER.sub("\n\n", _HEADER_AFTER_VALUE.sub(r"\1\n\n\2", text))
    return out if out == text or tomllib.loads(out) == tomllib.loads(text) else text


FLOOR_MARK = "; envman verify below the floor (failed, as the floor says):"


def _floor_evidence(support: Any, runs: list[_Cell]) -> None:
    """Failures below the family's floor prove the floor: their records join its evidence.

    They are not known_bad entries: min_version already says it, and diagnose explains such a
    failure from the floor (the first release that knows the architecture).
    """
    base = str(support.get("evidence", "")).split(FLOOR_MARK)[0]
    if not runs:
        if base != str(support.get("evidence", "")):
            support["evidence"] = base
        return
    refs = ", ".join(f"{c.reference} ({c.version})" for c in sorted(runs, key=lambda c: c.version, reverse=True))
    support["evidence"] = f"{base}{FLOOR_MARK} {refs}"


def _known_good(support: Any, passed: list[_Cell]) -> None:
    """Existing pins less the known-bad ones, plus the newest verified release of each major.minor line."""
    import tomlkit

    bad = [SpecifierSet(str(e["versions"])) for e in support.get("known_bad", []) if not e.get("formats")]
    floor = Version(str(support["min_version"])) if "min_version" in support else None
    good = {Version(str(v)) for v in support.get("known_good", [])}
    newest: dict[tuple[int, int], Version] = {}
    for c in passed:
        line = (c.version.major, c.version.minor)
        if line not in newest or c.version > newest[line]:
            newest[line] = c.version
    good |= set(newest.values())
    kept = sorted(v for v in good if not any(v in s for s in bad) and (floor is None or v >= floor))
    if [str(v) for v in kept] != [str(v) for v in support.get("known_good", [])]:
        array = tomlkit.array()
        array.extend(str(v) for v in kept)
        support["known_good"] = array
