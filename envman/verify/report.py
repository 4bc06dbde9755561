"""The verify report: per engine a family × version grid, pass/fail/skip at a glance.

Two renderings of the same data: Markdown (a table per engine, each cell linking its
evidence) and a self-contained HTML page (coloured cells, the detail on hover, the failures
listed with the engine's own error text). A cell links its committed evidence record
(``evidence/<id>.json`` beside matrix.toml, after ``--record``) relative to the report, else
the record in ENVMAN_HOME.
"""

from __future__ import annotations

import datetime as dt
import html
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from envman.files import atomic_write
from envman.hardware.host import Host
from envman.verify.cases import Outcome, parity

SYMBOL = {"pass": "✓", "fail": "✗", "skip": "–"}


@dataclass(frozen=True)
class Grid:
    engine: str
    variant: str
    families: tuple[str, ...]
    versions: tuple[Version, ...]  # newest first
    cells: Mapping[tuple[str, Version], Outcome]

    def counts(self) -> dict[str, int]:
        found = {"pass": 0, "fail": 0, "skip": 0}
        for o in self.cells.values():
            found[o.status] += 1
        return found


NO_SMOKE = "no smoke model"


def without_smoke_model(outcomes: list[Outcome]) -> list[str]:
    """Families skipped only for want of a smoke model: a line under the grids, not a column each."""
    skipped = {o.case.family for o in outcomes if o.detail.startswith(NO_SMOKE)}
    return sorted(skipped - {o.case.family for o in outcomes if not o.detail.startswith(NO_SMOKE)})


def grids(outcomes: list[Outcome]) -> list[Grid]:
    """One grid per engine × variant (families without a smoke model left out), newest version first."""
    by: dict[tuple[str, str], dict[tuple[str, Version], Outcome]] = {}
    for o in outcomes:
        if o.detail.startswith(NO_SMOKE):
            continue
        by.setdefault((o.case.engine, o.case.variant), {})[(o.case.row, o.case.version)] = o
    found = []
    for (engine, variant), cells in sorted(by.items()):
        skipped_only = {f for f, _ in cells} - {f for (f, _), o in cells.items() if o.status != "skip"}
        families = tuple(sorted({f for f, _ in cells}, key=lambda f: (f in skipped_only, f)))
        versions = tuple(sorted({v for _, v in cells}, reverse=True))
        found.append(Grid(engine, variant, families, versions, cells))
    return found


def link(outcome: Outcome, links: Mapping[str, Path], base: Path) -> str | None:
    """Where a cell's evidence is, for a report written in ``base``."""
    committed = links.get(outcome.case.key)
    if committed:
        return Path(os.path.relpath(committed, base)).as_posix()
    if outcome.evidence:
        return Path(outcome.evidence).absolute().as_uri()
    return None


def _summary(outcomes: list[Outcome]) -> str:
    cells = [o for o in outcomes if not o.detail.startswith(NO_SMOKE)]
    passed = sum(o.status == "pass" for o in cells)
    failed = sum(o.status == "fail" for o in cells)
    below = sum(o.status == "fail" and o.case.below_floor for o in cells)
    skipped = sum(o.status == "skip" for o in cells)
    under = f" ({below} below a family's floor, as expected)" if below else ""
    return f"{passed} passed, {failed} failed{under}, {skipped} skipped"


@dataclass(frozen=True)
class Failure:
    """Failures of one family × engine × variant with the same error, over their versions."""

    family: str
    engine: str
    variant: str
    error: str
    outcomes: tuple[Outcome, ...]  # oldest first

    @property
    def label(self) -> str:
        versions = [str(o.case.version) for o in self.outcomes]
        span = versions[0] if len(versions) == 1 else f"{versions[0]} … {versions[-1]} ({len(versions)} releases)"
        return f"{self.family} × {self.engine} {span} ({self.variant})"

    @property
    def below_floor(self) -> bool:
        return all(o.case.below_floor for o in self.outcomes)


def failures(outcomes: list[Outcome]) -> list[Failure]:
    grouped: dict[tuple[str, str, str, str], list[Outcome]] = {}
    for o in sorted(outcomes, key=lambda o: o.case):
        if o.status == "fail":
            key = (o.case.row, o.case.engine, o.case.variant, o.error or o.detail)
            grouped.setdefault(key, []).append(o)
    return [Failure(f, e, v, error, tuple(found)) for (f, e, v, error), found in grouped.items()]


def _header(host: Host, when: dt.datetime) -> str:
    return f"{when.isoformat(timespec='seconds')} on {host.describe()} ({host.cpu.model or host.arch})"


def _cell_text(o: Outcome) -> str:
    if o.status == "skip":
        return SYMBOL["skip"]
    return f"{SYMBOL[o.status]} {o.seconds:.1f}s"


def report_markdown(
    outcomes: list[Outcome], host: Host, when: dt.datetime, *, links: Mapping[str, Path] | None = None,
    base: Path | None = None,
) -> str:  # fmt: skip
    links = links or {}
    base = base or Path.cwd()
    lines = ["# envman verify", "", f"{_header(host, when)}: {_summary(outcomes)}", ""]
    lines += [f"Cells: {SYMBOL['pass']} passed (seconds), {SYMBOL['fail']} failed, {SYMBOL['skip']} skipped; "
              "each links its evidence record.", ""]  # fmt: skip
    for grid in grids(outcomes):
        counts = grid.counts()
        lines += [f"## {grid.engine} ({grid.variant}): {counts['pass']} passed, {counts['fail']} failed, "
                  f"{counts['skip']} skipped", ""]  # fmt: skip
        lines.append("| version | " + " | ".join(grid.families) + " |")
        lines.append("|---|" + "---|" * len(grid.families))
        for version in grid.versions:
            row = []
            for family in grid.families:
                o = grid.cells.get((family, version))
                if o is None:
                    row.append("")
                    continue
                target = link(o, links, base)
                row.append(f"[{_cell_text(o)}]({target})" if target else _cell_text(o))
            lines.append(f"| {version} | " + " | ".join(row) + " |")
        lines.append("")
    unsmoked = without_smoke_model(outcomes)
    if unsmoked:
        lines += [f"Not in the grids (no smoke model yet): {', '.join(unsmoked)}.", ""]
    problems = failures(outcomes)
    if problems:
        lines += ["## Failures", "", "| cells | below the floor | engine error |", "|---|---|---|"]
        for f in problems:
            why = f.error.replace("|", "\\|").replace("\n", " ")
            lines.append(f"| {f.label} | {'yes' if f.below_floor else 'no'} | {why} |")
        lines.append("")
    same = parity(outcomes)
    if same:
        lines += ["## Parity (same prompt, greedy, newest passing version of each engine)", ""]
        lines += [f"- {'same' if p.same else 'DIFFERENT'}: {p.describe()}" for p in same]
        lines.append("")
    return "\n".join(lines)


_STYLE = """
body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}
h1{margin-bottom:.2rem} .meta{color:#555;margin-top:0}
table.grid{border-collapse:collapse;margin:.5rem 0 1.5rem}
table.grid th,table.grid td{border:1px solid #fff;padding:3px 8px;text-align:center;font-size:13px}
table.grid th{background:#f0f0f0;position:sticky;top:0}
table.grid th.version{text-align:right;font-family:ui-monospace,monospace;font-weight:normal;background:#f7f7f7}
td.pass{background:#3fa34d} td.fail{background:#d9453c} td.skip{background:#d8d8d8}
td.fail.below{background:#e9a19c} .floornote{color:#a33;font-size:11px}
td.none{background:#fff}
td.pass a,td.fail a{color:#fff;text-decoration:none;display:block} td.skip a{color:#555;display:block}
td a:hover{text-decoration:underline}
.legend span{display:inline-block;padding:2px 10px;margin-right:6px;border-radius:3px;color:#fff}
.legend .pass{background:#3fa34d} .legend .fail{background:#d9453c}
.legend .below{background:#e9a19c} .legend .skip{background:#d8d8d8;color:#555}
.counts{font-weight:normal;color:#555;font-size:.8em}
table.problems{border-collapse:collapse;font-size:13px} table.problems td{border-bottom:1px solid #ddd;padding:3px 8px}
code{font-size:12px}
"""


def report_html(
    outcomes: list[Outcome], host: Host, when: dt.datetime, *, links: Mapping[str, Path] | None = None,
    base: Path | None = None,
) -> str:  # fmt: skip
    links = links or {}
    base = base or Path.cwd()
    e = html.escape
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'><title>envman verify</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>envman verify</h1>",
        f"<p class='meta'>{e(_header(host, when))}: <b>{e(_summary(outcomes))}</b></p>",
        "<p class='legend'><span class='pass'>✓ passed (seconds)</span><span class='fail'>✗ failed</span>"
        "<span class='below'>✗ failed below the family's floor (expected)</span>"
        "<span class='skip'>– skipped</span> each cell links its evidence; hover for the detail</p>",
    ]
    for grid in grids(outcomes):
        counts = grid.counts()
        anchor = f"{grid.engine}-{grid.variant}"
        parts.append(
            f"<h2 id='{e(anchor)}'>{e(grid.engine)} ({e(grid.variant)}) <span class='counts'>{counts['pass']} passed, "
            f"{counts['fail']} failed, {counts['skip']} skipped</span></h2>"
        )
        parts.append(f"<table class='grid' data-engine='{e(grid.engine)}' data-variant='{e(grid.variant)}'>")
        parts.append("<tr><th>version</th>" + "".join(f"<th>{e(f)}</th>" for f in grid.families) + "</tr>")
        for version in grid.versions:
            row = [f"<tr><th class='version'>{e(str(version))}</th>"]
            for family in grid.families:
                o = grid.cells.get((family, version))
                if o is None:
                    row.append("<td class='none'></td>")
                    continue
                tip = o.error or o.detail
                text = e(_cell_text(o))
                target = link(o, links, base)
                inner = f"<a href='{e(target)}'>{text}</a>" if target else text
                css = f"{o.status} below" if o.status == "fail" and o.case.below_floor else o.status
                row.append(
                    f"<td class='{css}' data-family='{e(family)}' data-version='{e(str(version))}' "
                    f"title='{e(tip)}'>{inner}</td>"
                )
            row.append("</tr>")
            parts.append("".join(row))
        parts.append("</table>")
    unsmoked = without_smoke_model(outcomes)
    if unsmoked:
        parts.append(f"<p class='meta'>Not in the grids (no smoke model yet): {e(', '.join(unsmoked))}.</p>")
    problems = failures(outcomes)
    if problems:
        parts.append("<h2>Failures</h2><table class='problems'>")
        for f in problems:
            target = link(f.outcomes[-1], links, base)
            where = f" <a href='{e(target)}'>evidence</a>" if target else ""
            floor = " <span class='floornote'>below the family's floor</span>" if f.below_floor else ""
            parts.append(f"<tr><td>{e(f.label)}{floor}</td><td><code>{e(f.error)}</code>{where}</td></tr>")
        parts.append("</table>")
    same = parity(outcomes)
    if same:
        parts.append("<h2>Parity</h2><ul>")
        parts += [f"<li>{'same' if p.same else 'DIFFERENT'}: {e(p.describe())}</li>" for p in same]
        parts.append("</ul>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(
    path: Path, outcomes: list[Outcome], host: Host, when: dt.datetime, links: Mapping[str, Path] | None = None
) -> Path:
    base = path.absolute().parent
    if path.suffix.lower() in (".html", ".htm"):
        text = report_html(outcomes, host, when, links=links, base=base)
    else:
        text = report_markdown(outcomes, host, when, links=links, base=base)
    return atomic_write(path, text)
