"""--record: evidence committed under evidence/, verified/known_bad/known_good in matrix.toml;
and the repository's own matrix names exactly the evidence files it has."""

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
from envman.verify.cases import Case, Outcome
from envman.verify.record import evidence_dir, orphans, record, references
from tests.helpers import REPO

HOST = Host(os="linux", arch="x86_64", cpu=Cpu("Test CPU", 2, 24 * 1024**3))
WHEN = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
CRASH = "/project/thirdparty/llama.cpp/src/llama.cpp:8637: GGML_ASSERT(n_threads > 0) failed"
ERROR = "llama_model_load: error loading model: error loading model architecture: unknown model architecture: 'gemma3'"


def test_every_evidence_file_is_named_in_matrix_toml_and_every_named_one_exists() -> None:
    missing, orphaned = orphans(REPO / "matrix.toml")
    assert not missing, f"matrix.toml names evidence that evidence/ lacks: {sorted(missing)}"
    assert not orphaned, f"evidence/ holds records matrix.toml does not name: {sorted(orphaned)}"
    assert references((REPO / "matrix.toml").read_text()), "matrix.toml names no evidence at all"


def test_every_verified_entry_names_its_evidence_file_and_lock() -> None:
    matrix = load_matrix(REPO / "matrix.toml")
    for family in matrix.families.values():
        for support in family.engines.values():
            for entry in support.verified:
                where = f"{family.name} × {support.engine} {entry.version}"
                assert entry.evidence.startswith("evidence/"), where
                assert entry.evidence.endswith(".json"), where
                document = json.loads((REPO / entry.evidence).read_text())
                assert document["result"] == "passed", where
                assert document["combination"]["engine_version"] == str(entry.version), where
                assert document["combination"]["family"] == family.name, where
                assert document["lock"]["digest"] == entry.lock, where
                assert document["combination"]["variant"] == entry.variant, where
                if entry.model:  # another form of the family's smoke model (smoke-gemma3-vision)
                    assert document["combination"]["model"] == entry.model, where


def _run(home: Path, case: Case, status: str, error: str | None = None) -> Outcome:
    """An outcome with a real evidence record in ``home``, as the smoke loop writes it."""
    path = home / "evidence" / case.engine / f"{case.version}-cpu" / f"{case.model}-x.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    document = {
        "schema": 1, "result": "passed" if status == "pass" else "failed",
        "combination": {"family": case.family, "engine": case.engine, "engine_version": str(case.version)},
        "lock": {"digest": f"sha256:{case.version}"}, "log": str(path.with_suffix(".log")),
        "server": {"weights": str(home / "models" / "m.gguf")}, "log_tail": None if status == "pass" else error,
    }  # fmt: skip
    path.write_text(json.dumps(document))
    detail = "8 tokens: 'abc'" if status == "pass" else "this llama.cpp build predates the model's architecture"
    return Outcome(case, status, 1.0, detail, str(path), None, error, f"sha256:{case.version}", "m", "l",
                   when="2026-12-01T10:00:00+00:00")  # fmt: skip


def test_record_commits_evidence_and_writes_verified_known_bad_and_known_good(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "home"
    monkeypatch.setenv("ENVMAN_HOME", str(home))
    repo = tmp_path / "repo"
    repo.mkdir()
    matrix = repo / "matrix.toml"
    shutil.copy(REPO / "matrix.toml", matrix)
    shutil.copytree(REPO / "evidence", repo / "evidence")

    def case(version: str) -> Case:
        below = Version(version) < Version("0.1.11")
        return Case("gemma3", "smoke-gemma3", "xllamacpp", Version(version), "cpu", below)

    outcomes = [
        _run(home, case("0.1.9"), "fail", ERROR),
        _run(home, case("0.1.10"), "fail", ERROR),
        _run(home, case("0.1.11"), "pass"),
        _run(home, case("0.1.12"), "pass"),
        _run(home, case("0.2.0"), "fail", CRASH),
        _run(home, case("0.2.14"), "pass"),
    ]
    passes, failures, links = record(matrix, outcomes, HOST, WHEN)

    assert (passes, failures) == (3, 3)
    files = sorted(p.name for p in evidence_dir(matrix).iterdir())
    assert {links[o.case.key].name for o in outcomes} <= set(files)
    assert all(len(Path(f).stem) == 12 for f in files)
    committed = json.loads(links[outcomes[2].case.key].read_text())
    assert "log" not in committed  # a local path: left out
    assert committed["server"]["weights"] == "$ENVMAN_HOME/models/m.gguf"

    support = tomlkit.parse(matrix.read_text())["families"]["gemma3"]["engines"]["xllamacpp"]  # type: ignore[index]
    verified = {v["version"]: (v["lock"], v["evidence"]) for v in support["verified"]}  # type: ignore[index,union-attr]
    for o in (
        outcomes[2],
        outcomes[3],
        outcomes[5],
    ):  # the passes replace the entries of their versions, the others stay
        assert verified[str(o.case.version)] == (o.lock_digest, f"evidence/{links[o.case.key].name}")
    assert "2026.10.11549" in verified
    # a failure above the floor is known bad, with the engine's own line and the next passing release
    bad = support["known_bad"][-1]  # type: ignore[index]
    assert bad["versions"] == "==0.2.0"  # type: ignore[index]
    assert bad["error"] == CRASH  # type: ignore[index]
    assert bad["fixed_in"] == "0.2.14"  # type: ignore[index]
    assert bad["evidence"] == f"evidence/{links[outcomes[4].case.key].name}"  # type: ignore[index]
    # failures below the floor prove the floor: they join its evidence, not known_bad
    assert [str(b["versions"]) for b in support["known_bad"]] == ["==2026.4.8672", "==0.2.0"]  # type: ignore[union-attr,index]
    floor = str(support["evidence"])  # type: ignore[index]
    assert floor.startswith("xllamacpp-0.1.11-cp311")
    assert floor.endswith(
        "; envman verify below the floor (failed, as the floor says): "
        f"evidence/{links[outcomes[1].case.key].name} (0.1.10), evidence/{links[outcomes[0].case.key].name} (0.1.9)"
    )
    # known_good keeps its pins and gains the newest verified release of each major.minor line
    good = [str(v) for v in support["known_good"]]  # type: ignore[index,union-attr]
    assert good == sorted(set(good), key=Version)
    assert {"0.1.11", "0.1.12", "0.2.14", "2026.10.11549"} <= set(good)
    # the result is a valid matrix, and names exactly the evidence it committed
    load_matrix(matrix)
    assert orphans(matrix) == (set(), set())

    # recording again the same runs changes nothing (same ids, entries replaced, not added)
    before = tomlkit.parse(matrix.read_text()).unwrap()
    record(matrix, outcomes, HOST, WHEN)
    assert tomlkit.parse(matrix.read_text()).unwrap() == before
    assert sorted(p.name for p in evidence_dir(matrix).iterdir()) == files


def test_committed_evidence_names_the_lockfile_inside_the_repository_not_the_checkout() -> None:
    from envman.verify.record import committed_record

    built_from = "/home/someone/checkout/lockfiles/xllamacpp-0.1.11-cpu-py3.11.txt"
    record = committed_record({"environment": {"lockfile": built_from}, "lock": {"lockfile": built_from}, "log": "x"})
    assert record == {
        "environment": {"lockfile": "lockfiles/xllamacpp-0.1.11-cpu-py3.11.txt"},
        "lock": {"lockfile": "lockfiles/xllamacpp-0.1.11-cpu-py3.11.txt"},
    }


def test_no_committed_evidence_names_a_local_lockfile_path() -> None:
    for path in evidence_dir(REPO / "matrix.toml").glob("*.json"):
        record = json.loads(path.read_text(encoding="utf-8"))
        for section in ("environment", "lock"):
            lockfile = (record.get(section) or {}).get("lockfile")
            assert lockfile is None or lockfile.startswith(("lockfiles/", "$ENVMAN_HOME/")), (path.name, lockfile)


def test_an_error_answer_with_a_clean_log_gives_the_engines_message() -> None:
    from envman.verify.sweep import _engine_error

    # vLLM 0.32.0 on smoke-gpt_oss (2026-12-01): the chat request refused, nothing in the log
    cause = (
        "POST http://127.0.0.1:52139/v1/chat/completions answered 400: "
        '{"error":{"message":"Token id 200008 is out of vocabulary","type":"BadRequestError","param":null,"code":400}}'
    )
    tail = 'INFO:     127.0.0.1:49074 - "POST /v1/chat/completions HTTP/1.1" 400 Bad Request\nINFO:     Shutting down\n'
    assert _engine_error((), tail, cause) == "Token id 200008 is out of vocabulary"
    assert _engine_error((), tail, '... answered 422: {"detail": "Field required"}') == "Field required"
    assert _engine_error((), tail, "... answered 502: <html>bad gateway</html>") is None
    assert _engine_error((), "RuntimeError: boom\n", cause) == "RuntimeError: boom"  # the log's exception first


def test_the_engine_error_is_the_root_exception_not_the_thread_that_died_of_it() -> None:
    from envman.verify.sweep import _engine_error

    # mlx-lm 0.32.2's server on a bf16 MoE model (evidence of smoke-qwen3moe, 2026-12-01)
    tail = (
        '  File "generate.py", line 1229, in prompt\n'
        "    mx.eval([c.state for c in self.prompt_cache])\n"
        "RuntimeError: [GatherMM::eval] Currently only supports float32.\n"
        "----------------------------------------\n"
        "Exception occurred during processing of request from ('127.0.0.1', 53038)\n"
        "Traceback (most recent call last):\n"
        "RuntimeError: generation thread died\n"
    )
    assert _engine_error((), tail) == "RuntimeError: [GatherMM::eval] Currently only supports float32."
    llama = "llama_model_load: error loading model: unknown model architecture: 'gemma3'\nllama_load: failed\n"
    assert _engine_error((), llama) == "llama_model_load: error loading model: unknown model architecture: 'gemma3'"


def test_recorded_tables_are_set_apart_and_the_data_is_unchanged() -> None:
    import tomllib

    from envman.verify.record import spaced

    text = 'v = 1\n[[a.verified]]\nx = [\n  1,\n]\n[b]\n# about c\n[c]\n[[d]]\n'
    assert spaced(text) == 'v = 1\n\n[[a.verified]]\nx = [\n  1,\n]\n\n[b]\n# about c\n[c]\n[[d]]\n'
    assert tomllib.loads(spaced(text)) == tomllib.loads(text)
    piled = "v = 1\n\n\n\n[[a.verified]]\nx = 1\n\n\n[[a.verified]]\nx = 2\n"  # blank lines moved up by appends
    assert spaced(piled) == "v = 1\n\n[[a.verified]]\nx = 1\n\n[[a.verified]]\nx = 2\n"
    inside = 'v = 1\n\n\n[[a.verified]]\nx = """\n\n\n[not a header]"""\n'  # would change the string
    assert spaced(inside) == inside
