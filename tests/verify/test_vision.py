"""The vision-language form of a smoke model: its own verify cell on the engines that take its
format, recorded with its model; and the smoke's check that the picture reached the model."""

from __future__ import annotations

import datetime as dt
import json
import shutil
from pathlib import Path

import pytest
import tomlkit
from packaging.version import Version

from envman.hardware.host import Cpu, Host
from envman.matrix.load import load_matrix
from envman.run.http import Answer
from envman.run.smoke import picture_unseen
from envman.verify.cases import Case, Outcome, cases, parity, sample
from envman.verify.record import record
from tests.helpers import REPO

HOST = Host(os="linux", arch="x86_64", cpu=Cpu("Test CPU", 2, 24 * 1024**3))
WHEN = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
VISION = "smoke-gemma3-vision"


def test_the_vision_model_gets_its_own_cell_where_the_engine_takes_its_format() -> None:
    matrix = load_matrix(REPO / "matrix.toml", environ={})
    runnable, _ = cases(matrix, HOST, family="gemma3", engine="transformers")
    newest = [c for c in runnable if c.version == Version("5.24.0")]
    assert [(c.model, c.primary) for c in newest] == [("smoke-gemma3", True), (VISION, False)]
    vision = newest[1]
    assert vision.key == f"gemma3/transformers/5.24.0/cpu/{VISION}"  # its own state entry and evidence link
    assert vision.row == f"gemma3 ({VISION})"
    assert newest[0].key == "gemma3/transformers/5.24.0/cpu"  # the text cell's key as before: sweeps resume
    # xllamacpp takes GGUF only, and the vision model has no GGUF form: no cell, no skip line
    gguf, skipped = cases(matrix, HOST, family="gemma3", engine="xllamacpp")
    assert gguf
    assert all(c.model == "smoke-gemma3" for c in gguf)
    assert all(o.case.model == "smoke-gemma3" for o in skipped)
    # a sweep below the floor proves the floor with the text model only
    swept, _ = cases(
        matrix, HOST, family="gemma3", engine="transformers",
        versions={("transformers", "cpu"): {Version("4.49.0"): None, Version("4.50.0"): None}}, below_floor=True,
    )  # fmt: skip
    assert [(str(c.version), c.model) for c in swept] == [
        ("4.49.0", "smoke-gemma3"), ("4.50.0", "smoke-gemma3"), ("4.50.0", VISION),
    ]  # fmt: skip
    # CI's sample keeps the text model
    picked, _ = sample(runnable, [])
    assert [(c.engine, c.model) for c in picked] == [("transformers", "smoke-gemma3")]


def _run(home: Path, case: Case, status: str, error: str | None = None, answer: str = "abc") -> Outcome:
    path = home / "evidence" / case.engine / f"{case.version}-cpu" / f"{case.model}-x.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": 1, "result": "passed" if status == "pass" else "failed",
        "combination": {"model": case.model, "family": case.family, "engine": case.engine,
                        "engine_version": str(case.version)},
        "lock": {"digest": "sha256:new"}, "log_tail": error,
    }  # fmt: skip
    path.write_text(json.dumps(document))
    return Outcome(case, status, 1.0, "8 tokens" if status == "pass" else "failed", str(path), answer, error,
                   "sha256:new", "m", "l", when="2026-12-01T10:00:00+00:00")  # fmt: skip


def test_a_vision_pass_is_verified_with_its_model_beside_the_text_entry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    repo = tmp_path / "repo"
    repo.mkdir()
    matrix = repo / "matrix.toml"
    shutil.copy(REPO / "matrix.toml", matrix)
    shutil.copytree(REPO / "evidence", repo / "evidence")
    text = Case("gemma3", "smoke-gemma3", "transformers", Version("5.24.0"), "cpu")
    vision = Case("gemma3", VISION, "transformers", Version("5.24.0"), "cpu", primary=False)
    older = Case("gemma3", VISION, "transformers", Version("4.50.0"), "cpu", primary=False)
    home = tmp_path / "home"
    outcomes = [
        _run(home, text, "pass"),
        _run(home, vision, "pass", answer="xyz"),
        _run(home, older, "fail", "AttributeError: no image processor"),
    ]
    support = tomlkit.parse(matrix.read_text())["families"]["gemma3"]["engines"]["transformers"]  # type: ignore[index]
    good_before = list(support["known_good"])  # type: ignore[index,arg-type]
    bad_before = len(support.get("known_bad", []))  # type: ignore[union-attr,arg-type]

    passes, failures, links = record(matrix, outcomes, HOST, WHEN)

    assert (passes, failures) == (2, 0)
    assert older.key not in links  # its evidence is not committed: no entry would name it
    support = tomlkit.parse(matrix.read_text())["families"]["gemma3"]["engines"]["transformers"]  # type: ignore[index]
    entries = [(e["version"], e.get("model", "")) for e in support["verified"]]  # type: ignore[index,union-attr]
    assert entries.count(("5.24.0", "")) == 1
    assert entries.count(("5.24.0", VISION)) == 1
    assert ("4.50.0", "") in entries  # the text model's 4.50.0 entry stays: the vision run does not replace it
    # the vision failure is the report's: a family's known_bad would refuse 4.50.0 for the text model too
    assert len(support.get("known_bad", [])) == bad_before  # type: ignore[union-attr,arg-type]
    assert list(support["known_good"]) == good_before  # type: ignore[index,arg-type]
    loaded = load_matrix(matrix, environ={})
    models = {(str(v.version), v.model) for v in loaded.families["gemma3"].engines["transformers"].verified}
    assert ("5.24.0", VISION) in models

    again = tomlkit.parse(matrix.read_text()).unwrap()
    record(matrix, outcomes, HOST, WHEN)  # recording again replaces, never adds
    assert tomlkit.parse(matrix.read_text()).unwrap() == again


def test_parity_compares_each_form_of_a_smoke_model_apart() -> None:
    text = Case("gemma3", "smoke-gemma3", "transformers", Version("5.24.0"), "cpu")
    vision = Case("gemma3", VISION, "transformers", Version("5.24.0"), "cpu", primary=False)
    gguf = Case("gemma3", "smoke-gemma3", "xllamacpp", Version("0.2.14"), "cpu")

    def out(case: Case, answer: str) -> Outcome:
        return Outcome(case, "pass", 1.0, "", answer=answer)

    [found] = parity([out(text, "abc"), out(vision, "xyz"), out(gguf, "abc")])
    assert found.family == "gemma3"
    assert found.same  # the vision model's own weights answer otherwise: not compared with the text one


def answer(prompt_tokens: int | None) -> Answer:
    return Answer("abc", 8, prompt_tokens, "length", None, "m")


def test_an_answer_whose_prompt_did_not_grow_with_the_picture_left_it_out() -> None:
    assert picture_unseen(answer(12), answer(20)) is None  # 4 soft tokens and the image markers
    assert picture_unseen(answer(12), answer(12)) == (
        "the picture was left out: the image request's prompt has 12 tokens, the same words without it 12"
    )
    assert picture_unseen(answer(None), answer(12)) is None  # no usage reported: the answer alone counts
