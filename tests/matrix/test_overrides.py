"""Per-site index overrides: environment first, then the config file, then matrix.toml."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest

from envman.errors import ConfigError
from envman.matrix.load import load_matrix
from envman.matrix.schema import Variant


@pytest.fixture
def config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """ENVMAN_CONFIG pointed at a file the test writes (absent until it does)."""
    path = tmp_path / "config.toml"
    monkeypatch.setenv("ENVMAN_CONFIG", str(path))
    return path


def variant(path: Path, engine: str, name: str, environ: dict[str, str] | None = None) -> Variant:
    return load_matrix(path, environ=environ or {}).engines[engine].variants[name]


def test_without_overrides_the_matrix_defaults_stand(real_matrix_path: Path, config: Path) -> None:
    cuda = variant(real_matrix_path, "xllamacpp", "cuda")
    assert cuda.index_url == "https://xorbitsai.github.io/xllamacpp/whl/cu128"
    assert variant(real_matrix_path, "vllm", "cpu").find_links == ()


def test_find_links_from_the_environment(real_matrix_path: Path, config: Path) -> None:
    matrix = load_matrix(real_matrix_path, environ={"ENVMAN_VLLM_CPU_FIND_LINKS": "/opt/wheels /x"})

    assert matrix.engines["vllm"].variants["cpu"].find_links == ("/opt/wheels", "/x")
    assert matrix.engines["vllm"].variants["cuda"].find_links == ()  # only the named variant changes


def test_index_urls_from_the_environment(real_matrix_path: Path, config: Path) -> None:
    environ = {
        "ENVMAN_LLAMA_CPP_PYTHON_CUDA_INDEX_URL": "https://mirror.example/cu124",  # '-' becomes '_'
        "ENVMAN_VLLM_CPU_EXTRA_INDEX_URLS": "https://a.example/simple  https://b.example/simple",
    }
    matrix = load_matrix(real_matrix_path, environ=environ)

    assert matrix.engines["llama-cpp-python"].variants["cuda"].index_url == "https://mirror.example/cu124"
    assert matrix.engines["vllm"].variants["cpu"].extra_index_urls == (
        "https://a.example/simple",
        "https://b.example/simple",
    )


def test_an_empty_index_url_in_the_environment_clears_it(real_matrix_path: Path, config: Path) -> None:
    assert variant(real_matrix_path, "xllamacpp", "cuda", {"ENVMAN_XLLAMACPP_CUDA_INDEX_URL": ""}).index_url is None


def test_config_file_overrides_the_matrix(real_matrix_path: Path, config: Path) -> None:
    config.write_text(
        '[indexes."xllamacpp.cuda"]\nindex_url = "https://mirror.example/whl/cu128"\nfind_links = ["/srv/wheels"]\n',
        encoding="utf-8",
    )

    cuda = variant(real_matrix_path, "xllamacpp", "cuda")

    assert (cuda.index_url, cuda.find_links) == ("https://mirror.example/whl/cu128", ("/srv/wheels",))
    assert variant(real_matrix_path, "xllamacpp", "cpu").index_url is None


def test_the_environment_beats_the_config_file(real_matrix_path: Path, config: Path) -> None:
    config.write_text(
        '[indexes."xllamacpp.cuda"]\nindex_url = "https://config.example/simple"\nfind_links = ["/srv/wheels"]\n',
        encoding="utf-8",
    )

    cuda = variant(
        real_matrix_path, "xllamacpp", "cuda", {"ENVMAN_XLLAMACPP_CUDA_INDEX_URL": "https://env.example/simple"}
    )

    assert cuda.index_url == "https://env.example/simple"
    assert cuda.find_links == ("/srv/wheels",)  # what the environment does not set still comes from the file


def test_an_unknown_key_in_the_config_is_a_config_error(real_matrix_path: Path, config: Path) -> None:
    config.write_text('[indexes."vllm.cpu"]\nindex-url = "https://mirror.example/simple"\n', encoding="utf-8")

    with pytest.raises(ConfigError) as caught:
        load_matrix(real_matrix_path, environ={})

    assert caught.value.message == f"{config}: indexes.'vllm.cpu' has unknown keys ['index-url']"
    assert caught.value.hint == "allowed keys: index_url, extra_index_urls, find_links"
    assert caught.value.exit_code == 2


def test_a_config_that_is_not_toml_is_a_config_error(real_matrix_path: Path, config: Path) -> None:
    config.write_text('[indexes."vllm.cpu"\n', encoding="utf-8")

    with pytest.raises(ConfigError, match=r"is not valid TOML"):
        load_matrix(real_matrix_path, environ={})


def test_an_unknown_engine_variant_in_the_config_is_a_config_error(real_matrix_path: Path, config: Path) -> None:
    config.write_text('[indexes."vllm.cuad"]\nindex_url = "https://mirror.example/simple"\n', encoding="utf-8")

    with pytest.raises(ConfigError, match=r"vllm\.cuad"):
        load_matrix(real_matrix_path, environ={})


def test_a_string_where_a_list_belongs_is_a_config_error(real_matrix_path: Path, config: Path) -> None:
    config.write_text('[indexes."vllm.cpu"]\nfind_links = "/srv/wheels"\n', encoding="utf-8")

    with pytest.raises(ConfigError, match="find_links"):
        load_matrix(real_matrix_path, environ={})


def test_cli_reports_a_bad_config_and_exits_2(
    tmp_path: Path, envman_cli: Callable[..., subprocess.CompletedProcess[str]]
) -> None:
    # envman_cli points ENVMAN_CONFIG at tmp_path / "no-config.toml"
    bad = tmp_path / "no-config.toml"
    bad.write_text('[indexes."vllm.cpu"]\nindex-url = "https://mirror.example/simple"\n', encoding="utf-8")

    result = envman_cli("plan", "smoke-gemma3", "--hardware", "cpu")

    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"error: {bad}: indexes.'vllm.cpu' has unknown keys ['index-url']",
        "hint: allowed keys: index_url, extra_index_urls, find_links",
    ]
