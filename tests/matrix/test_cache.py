"""The parsed-matrix cache: a hit skips the parse, any change or damage is a miss, never an error."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from envman.errors import ConfigError
from envman.matrix import cache, load
from envman.matrix.load import load_matrix
from tests.helpers import REPO


@pytest.fixture
def matrix_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("ENVMAN_CONFIG", str(tmp_path / "no-config.toml"))
    path = tmp_path / "matrix.toml"
    shutil.copy(REPO / "matrix.toml", path)
    return path


def no_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(text: str, path: Path) -> None:
        raise AssertionError("parsed again")

    monkeypatch.setattr(load, "parse_matrix", refuse)


def test_a_second_load_is_the_first_ones_result_without_parsing(
    matrix_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = load_matrix(matrix_path, environ={})
    assert cache.cache_file(matrix_path).is_file()
    assert cache.cache_file(matrix_path).stat().st_mode & 0o777 == 0o600
    no_parse(monkeypatch)
    assert load_matrix(matrix_path, environ={}) == first


def test_an_edited_matrix_is_parsed_again(matrix_path: Path) -> None:
    load_matrix(matrix_path, environ={})
    text = matrix_path.read_text(encoding="utf-8")
    assert 'description = "A tiny' not in text
    edited = text.replace("[models.smoke-gemma3]\n", '[models.smoke-gemma3]\ndescription = "A tiny"\n', 1)
    matrix_path.write_text(edited, encoding="utf-8")
    with pytest.raises(ConfigError, match="has 1 problem") as raised:  # not the cached, valid matrix
        load_matrix(matrix_path, environ={})
    assert any("models.smoke-gemma3.description" in problem for problem in raised.value.problems)
    matrix_path.write_text(text.replace("smoke = true", "smoke = false", 1), encoding="utf-8")
    assert sum(m.smoke for m in load_matrix(matrix_path, environ={}).models.values()) == (
        sum(m.smoke for m in load_matrix(REPO / "matrix.toml", environ={}).models.values()) - 1
    )


@pytest.mark.parametrize("damage", [b"", b"not a pickle", b"\x80\x05garbage", None])
def test_a_damaged_cache_file_is_ignored_and_rewritten(matrix_path: Path, damage: bytes | None) -> None:
    first = load_matrix(matrix_path, environ={})
    file = cache.cache_file(matrix_path)
    good = file.read_bytes()
    file.write_bytes(good[: len(good) // 2] if damage is None else damage)
    assert load_matrix(matrix_path, environ={}) == first
    assert file.read_bytes() == good


def test_a_cache_file_others_can_write_is_not_read(matrix_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    first = load_matrix(matrix_path, environ={})
    cache.cache_file(matrix_path).chmod(0o666)
    parsed = []
    monkeypatch.setattr(load, "parse_matrix", lambda text, path: parsed.append(path) or first)
    assert load_matrix(matrix_path, environ={}) == first
    assert parsed == [matrix_path]
    assert cache.cache_file(matrix_path).stat().st_mode & 0o777 == 0o600  # rewritten, as ours


def test_an_unwritable_home_loads_uncached(tmp_path: Path, matrix_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "a-file"))
    assert load_matrix(matrix_path, environ={}).models


def test_index_overrides_and_the_config_file_are_part_of_the_key(
    tmp_path: Path, matrix_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    load_matrix(matrix_path, environ={})
    matrix = load_matrix(matrix_path, environ={"ENVMAN_XLLAMACPP_CPU_INDEX_URL": "https://mirror.example/simple"})
    assert matrix.engines["xllamacpp"].variants["cpu"].index_url == "https://mirror.example/simple"
    assert load_matrix(matrix_path, environ={}).engines["xllamacpp"].variants["cpu"].index_url is None
    (tmp_path / "no-config.toml").write_text('[indexes."xllamacpp.cpu"]\nfind_links = ["/wheels"]\n')
    assert load_matrix(matrix_path, environ={}).engines["xllamacpp"].variants["cpu"].find_links == ("/wheels",)
    (tmp_path / "no-config.toml").write_text('[indexes."xllamacpp.cpux"]\n')
    with pytest.raises(ConfigError, match="names no engine variant"):
        load_matrix(matrix_path, environ={})


def test_a_hit_imports_no_toml_parser(matrix_path: Path) -> None:
    load_matrix(matrix_path, environ={})
    code = (
        "import sys; from pathlib import Path; from envman.matrix.load import load_matrix\n"
        f"assert load_matrix(Path({str(matrix_path)!r}), environ={{}}).models\n"
        "print(sorted(m for m in sys.modules if m.startswith(('tomllib', 'envman.matrix.overrides'))))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_each_matrix_path_has_its_own_entry(matrix_path: Path, tmp_path: Path) -> None:
    other = tmp_path / "other" / "matrix.toml"
    other.parent.mkdir()
    shutil.copy(matrix_path, other)
    assert load_matrix(other, environ={}).path == str(other)
    assert load_matrix(matrix_path, environ={}).path == str(matrix_path)
    assert cache.cache_file(other) != cache.cache_file(matrix_path)
