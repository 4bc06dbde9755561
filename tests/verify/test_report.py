"""The verify report and parity, from outcomes (no engines)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from packaging.version import Version

from envman.hardware.host import Cpu, Host
from envman.verify.cases import Case, Outcome, parity, write_report

HOST = Host(os="linux", arch="x86_64", cpu=Cpu("Test CPU", 2, 24 * 1024**3))
WHEN = dt.datetime(2026, 11, 22, tzinfo=dt.UTC)


def outcome(engine: str, version: str, status: str, answer: str | None = None, family: str = "gemma3") -> Outcome:
    case = Case(family, f"smoke-{family}", engine, Version(version), "cpu")
    return Outcome(case, status, 1.5, answer or "why", "/e/x.json" if status != "skip" else None, answer)


def test_parity_compares_engines_that_passed() -> None:
    same = parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "2026.10.11549", "pass", "abc")])
    assert [(p.family, p.same) for p in same] == [("gemma3", True)]
    assert same[0].describe() == (
        "gemma3: same greedy answer from vllm 0.32.0 (cpu) and xllamacpp 2026.10.11549 (cpu): 'abc'"
    )
    differ = parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "2026.10.11549", "pass", "abd")])
    assert not differ[0].same
    # one engine alone, or a failure, has nothing to compare
    assert parity([outcome("vllm", "0.32.0", "pass", "abc"), outcome("xllamacpp", "0.1.10", "fail")]) == []


def test_markdown_and_html_reports(tmp_path: Path) -> None:
    outcomes = [
        outcome("vllm", "0.32.0", "pass", "abc"),
        outcome("xllamacpp", "2026.10.11549", "pass", "abc"),
        outcome("vllm", "0.32.0", "skip", family="llama4"),
    ]
    md = write_report(tmp_path / "r.md", outcomes, HOST, WHEN).read_text()
    assert "| gemma3 | vllm | 0.32.0 | cpu | pass | 1.5 | abc ([evidence](/e/x.json)) |" in md
    assert "| llama4 | vllm | 0.32.0 | cpu | skip |  | why |" in md
    assert "- same: gemma3: same greedy answer from vllm 0.32.0 (cpu) and xllamacpp 2026.10.11549 (cpu): 'abc'" in md
    page = write_report(tmp_path / "r.html", outcomes, HOST, WHEN).read_text()
    assert page.startswith("<!doctype html>")
    assert "<td>llama4</td>" in page
    assert page.count("<tr") == 4
