"""The verify report and parity, from outcomes (no engines): the grids, parsed."""

from __future__ import annotations

import datetime as dt
from html.parser import HTMLParser
from pathlib import Path

from packaging.version import Version

from envman.hardware.host import Cpu, Host
from envman.verify.cases import Case, Outcome, parity
from envman.verify.report import write_report

HOST = Host(os="linux", arch="x86_64", cpu=Cpu("Test CPU", 2, 24 * 1024**3))
WHEN = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def outcome(
    engine: str, version: str, status: str, answer: str | None = None, family: str = "gemma3", detail: str = "why"
) -> Outcome:
    below = family == "gemma3" and engine == "xllamacpp" and Version(version) < Version("0.1.11")
    case = Case(family, f"smoke-{family}", engine, Version(version), "cpu", below)
    evidence = f"/e/{engine}-{version}-{family}.json" if status != "skip" else None
    error = "unknown model architecture: 'gemma3'" if status == "fail" else None
    return Outcome(case, status, 1.5, answer or detail, evidence, answer, error)


def test_parity_compares_the_newest_passing_version_of_each_engine() -> None:
    same = parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "2026.10.11549", "pass", "abc")])
    assert [(p.family, p.same) for p in same] == [("gemma3", True)]
    assert same[0].describe() == (
        "gemma3: same greedy answer from vllm 0.32.0 (cpu) and xllamacpp 2026.10.11549 (cpu): 'abc'"
    )
    differ = parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "2026.10.11549", "pass", "abd")])
    assert not differ[0].same
    # an older release answering otherwise does not count: the newest of each engine is compared
    swept = parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "0.1.11", "pass", "zzz"),
                    outcome("xllamacpp", "2026.10.11549", "pass", "abc")])  # fmt: skip
    assert swept[0].same
    # one engine alone, or a failure, has nothing to compare
    assert parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "0.1.10", "fail")]) == []


class Cells(HTMLParser):
    """The grids of a report page: per table (engine, variant), its header and cells."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: list[dict[str, object]] = []
        self.cells: list[dict[str, str | None]] = []
        self._in: dict[str, str | None] | None = None
        self._header: list[str] | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("class") == "grid":
            self.tables.append({"engine": a["data-engine"], "variant": a["data-variant"], "header": []})
        elif tag == "td" and self.tables and a.get("data-family"):
            self._in = {"class": a.get("class"), "family": a["data-family"], "version": a["data-version"],
                        "title": a.get("title"), "href": None, "text": ""}  # fmt: skip
            self._text = []
        elif tag == "a" and self._in is not None:
            self._in["href"] = a.get("href")
        elif tag == "th" and self.tables:
            self._header = []

    def handle_data(self, data: str) -> None:
        if self._in is not None:
            self._text.append(data)
        if self._header is not None:
            self._header.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self._in is not None:
            self._in["text"] = "".join(self._text).strip()
            self.cells.append(self._in)
            self._in = None
        elif tag == "th" and self._header is not None:
            header = self.tables[-1]["header"]
            assert isinstance(header, list)
            header.append("".join(self._header).strip())
            self._header = None


def test_html_report_is_a_family_by_version_grid_linking_evidence(tmp_path: Path) -> None:
    committed = tmp_path / "repo" / "evidence" / "0123456789ab.json"
    outcomes = [
        outcome("xllamacpp", "0.1.10", "fail", family="gemma3"),
        outcome("xllamacpp", "0.1.11", "pass", "abc", family="gemma3"),
        outcome("xllamacpp", "0.1.11", "pass", "abc", family="llama"),
        outcome("xllamacpp", "0.1.1", "skip", family="llama", detail="only an sdist on the index"),
        outcome("xllamacpp", "0.1.11", "skip", family="llama4", detail="no smoke model for llama4"),
        outcome("vllm", "0.32.0", "pass", "abc"),
    ]
    links = {outcomes[1].case.key: committed}
    page = write_report(tmp_path / "out" / "r.html", outcomes, HOST, WHEN, links).read_text()

    parsed = Cells()
    parsed.feed(page)
    assert [(t["engine"], t["variant"]) for t in parsed.tables] == [("vllm", "cpu"), ("xllamacpp", "cpu")]
    # columns: the families with a smoke model; rows: versions, newest first
    assert parsed.tables[1]["header"] == ["version", "gemma3", "llama", "0.1.11", "0.1.10", "0.1.1"]
    cells = {(c["family"], c["version"]): c for c in parsed.cells}
    assert cells[("gemma3", "0.1.11")]["class"] == "pass"
    assert cells[("gemma3", "0.1.11")]["text"] == "✓ 1.5s"
    # a committed record is linked relative to the report; the others where ENVMAN_HOME has them
    assert cells[("gemma3", "0.1.11")]["href"] == "../repo/evidence/0123456789ab.json"
    assert cells[("gemma3", "0.1.10")]["class"] == "fail below"  # under the family's floor: expected
    assert cells[("gemma3", "0.1.10")]["href"] == "file:///e/xllamacpp-0.1.10-gemma3.json"
    assert cells[("gemma3", "0.1.10")]["title"] == "unknown model architecture: 'gemma3'"
    assert cells[("llama", "0.1.1")]["class"] == "skip"
    assert cells[("llama", "0.1.1")]["href"] is None
    assert ("llama4", "0.1.11") not in cells  # no smoke model: named once under the grids
    assert "Not in the grids (no smoke model yet): llama4." in page
    assert "3 passed, 1 failed (1 below a family&#x27;s floor, as expected), 1 skipped" in page
    assert "gemma3 × xllamacpp 0.1.10 (cpu) <span class='floornote'>below the family's floor</span>" in page
    # cells never run are empty, not skips: gemma3 0.1.1 (below its floor) and llama 0.1.10
    assert page.count("<td class='none'></td>") == 2
    assert sum(c["class"] == "pass" for c in parsed.cells) == 3


def test_markdown_report_has_a_grid_per_engine(tmp_path: Path) -> None:
    outcomes = [
        outcome("xllamacpp", "0.1.10", "fail"),
        outcome("xllamacpp", "0.1.11", "pass", "abc"),
        outcome("vllm", "0.32.0", "pass", "abc"),
    ]
    md = write_report(tmp_path / "r.md", outcomes, HOST, WHEN).read_text()
    assert "## xllamacpp (cpu): 1 passed, 1 failed, 0 skipped" in md
    assert "| version | gemma3 |" in md
    assert "| 0.1.11 | [✓ 1.5s](file:///e/xllamacpp-0.1.11-gemma3.json) |" in md
    assert "| 0.1.10 | [✗ 1.5s](file:///e/xllamacpp-0.1.10-gemma3.json) |" in md
    assert "| gemma3 × xllamacpp 0.1.10 (cpu) | yes | unknown model architecture: 'gemma3' |" in md
    assert "- same: gemma3: same greedy answer from vllm 0.32.0 (cpu) and xllamacpp 0.1.11 (cpu): 'abc'" in md
