"""Hostile matrix.toml, config.toml and images.toml: each is refused at load with file:line (exit 2)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from envman.errors import ConfigError
from envman.matrix.schema import Format
from tests.envs.conftest import make_cli
from tests.helpers import REPO

SMOKE_GGUF = 'file = "smoke-gemma3-F16.gguf"'


def line_of(text: str) -> int:
    """The line of the repository's matrix.toml that holds ``text``."""
    content = (REPO / "matrix.toml").read_text(encoding="utf-8")
    return content[: content.index(text)].count("\n") + 1


def edited(tmp_path: Path, old: str, new: str | bytes) -> Path:
    text = (REPO / "matrix.toml").read_bytes()
    assert text.count(old.encode()) == 1, old
    path = tmp_path / "repo" / "matrix.toml"
    path.parent.mkdir(exist_ok=True)
    shutil.copytree(REPO / "lockfiles", path.parent / "lockfiles", dirs_exist_ok=True)
    path.write_bytes(text.replace(old.encode(), new if isinstance(new, bytes) else new.encode()))
    return path


def check(tmp_path: Path, matrix: Path, *args: str) -> tuple[int, str]:
    cli = make_cli(tmp_path / "home", ENVMAN_MATRIX=str(matrix))
    result = cli("matrix", "--check", *args, timeout=60)
    assert "Traceback" not in result.stderr, result.stderr
    return result.returncode, result.stderr


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("cpu_memory_utilization = 0.80", "cpu_memory_utilization = nan",
         "matrix.toml:{line} planner.cpu_memory_utilization: must be a finite number, got nan"),
        ("overhead_gib = 2.0", "overhead_gib = inf",
         "matrix.toml:{line} planner.overhead_gib: must be a finite number, got inf"),
        ("overhead_gib = 2.0", "overhead_gib = 1e300",
         "matrix.toml:{line} planner.overhead_gib: must be between 0.0 and 1024.0, got 1e+300"),
        ("default_max_model_len = 16384", "default_max_model_len = 9223372036854775807",
         "matrix.toml:{line} planner.default_max_model_len: must be between 1 and 1073741824, got 9223372036854775807"),
    ],
)  # fmt: skip
def test_numbers_must_be_finite_and_in_range(tmp_path: Path, old: str, new: str, problem: str) -> None:
    code, err = check(tmp_path, edited(tmp_path, old, new))
    assert code == 2
    assert problem.format(line=line_of(old)) in err


def test_a_plan_is_never_made_from_a_nan(tmp_path: Path) -> None:
    matrix = edited(tmp_path, "cpu_memory_utilization = 0.80", "cpu_memory_utilization = nan")
    result = make_cli(tmp_path / "home", ENVMAN_MATRIX=str(matrix))("plan", "smoke-gemma3", "--hardware", "cpu")
    assert result.returncode == 2
    assert "planner.cpu_memory_utilization: must be a finite number, got nan" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_latin1_byte_is_reported_with_its_line(tmp_path: Path) -> None:
    before = 'evidence = "synthesized by envman (random weights)"\nartifacts = [\n'
    before += '  { format = "pytorch", repo = "envman/smoke-gemma3"'
    latin1 = before.replace("weights)", "weights) caf\udce9").encode("utf-8", "surrogateescape")  # a lone 0xe9
    matrix = edited(tmp_path, before, latin1)
    code, err = check(tmp_path, matrix)
    assert code == 2
    assert f"{matrix.name}:{line_of(before)}: byte 0xe9 is not UTF-8" in err


@pytest.mark.parametrize(
    ("new", "problem"),
    [
        ('file = "../../../../tmp/x.gguf"', "'../../../../tmp/x.gguf' is not a relative path inside the repository"),
        ('file = "/tmp/x.gguf"', "'/tmp/x.gguf' is not a relative path inside the repository"),
        ('file = "sub/../../x.gguf"', "'sub/../../x.gguf' is not a relative path inside the repository"),
        ('file = "..\\\\x.gguf"', "'..\\\\x.gguf' is not a relative path inside the repository"),
        ('file = ""', "'' is not a relative path inside the repository"),
        ('file = "~/x.gguf"', "'~/x.gguf' is not a relative path inside the repository"),
    ],
)
def test_an_artifact_file_must_stay_inside_its_repository(tmp_path: Path, new: str, problem: str) -> None:
    code, err = check(tmp_path, edited(tmp_path, SMOKE_GGUF, new))
    assert code == 2
    assert f"matrix.toml:{line_of(SMOKE_GGUF)} models.smoke-gemma3.artifacts[1].file: {problem}" in err


@pytest.mark.parametrize("repo", ["../../etc", "envman/../x", "/abs/path", "a/b/c", "envman/", "-x/y", "a..b/c"])
def test_an_artifact_repo_must_be_a_hub_repo_id(tmp_path: Path, repo: str) -> None:
    old = 'repo = "envman/smoke-gemma3", quantization = "F16"'
    code, err = check(tmp_path, edited(tmp_path, old, f'repo = "{repo}", quantization = "F16"'))
    assert code == 2
    assert f"models.smoke-gemma3.artifacts[1].repo: {repo!r} is not a hub repo id (owner/name)" in err


def test_a_model_name_must_not_be_a_path(tmp_path: Path) -> None:
    code, err = check(tmp_path, edited(tmp_path, "[models.smoke-gemma3]", '[models."../../evil"]'))
    assert code == 2
    assert "'../../evil' is not a name" in err


def test_the_synth_cache_refuses_a_file_outside_its_entry(tmp_path: Path) -> None:
    """Defence in depth: a Model built without the reader still cannot write outside the cache."""
    import dataclasses

    from envman.errors import UsageError
    from envman.matrix.load import load_matrix
    from envman.synth import synthesize

    model = load_matrix(REPO / "matrix.toml").models["smoke-gemma3"]
    hostile = tuple(
        dataclasses.replace(a, file="../../../../" + str(tmp_path / "escaped.gguf")) if a.format is Format.GGUF else a
        for a in model.artifacts
    )
    with pytest.raises(UsageError, match="outside"):
        synthesize(dataclasses.replace(model, artifacts=hostile), Format.GGUF, root=tmp_path / "home")
    assert not (tmp_path / "escaped.gguf").exists()
    assert not list((tmp_path / "home").rglob("*.tmp"))


def test_config_toml_latin1_and_bad_values(tmp_path: Path) -> None:
    config = tmp_path / "config.toml"
    config.write_bytes(b'[indexes."vllm.cpu"]\nindex_url = "https://caf\xe9.example/simple"\n')
    cli = make_cli(tmp_path / "home", ENVMAN_CONFIG=str(config))
    result = cli("matrix", "--check", timeout=60)
    assert result.returncode == 2
    assert f"{config.name}:2: byte 0xe9 is not UTF-8" in result.stderr
    assert "Traceback" not in result.stderr
    config.write_text('[indexes."vllm.cpu"]\nindex_url = "https://ok.example/simple"\nfind_links = [1]\n')
    result = cli("matrix", "--check", timeout=60)
    assert result.returncode == 2
    assert "find_links must be a list of strings" in result.stderr


def test_images_toml_is_validated(tmp_path: Path) -> None:
    import tomllib

    from envman.docker import images

    data = tomllib.loads(images.FACTS_FILE.read_text(encoding="utf-8"))
    for key, value in (("port", 70000), ("port", 0), ("uid", -1), ("uid", 2**40), ("port", True)):
        with pytest.raises(ConfigError, match=f"images.toml: {key}: must be an integer between"):
            images.parse({**data, key: value})
    bad = tmp_path / "images.toml"
    bad.write_bytes(b'uv = "0.13.9"\n# caf\xe9\n')
    with pytest.raises(ConfigError) as caught:
        images.read(bad)
    assert caught.value.problems == ["images.toml:2: byte 0xe9 is not UTF-8 (the file must be UTF-8)"]
    bad.write_text('uv = "0.13.9\n')
    with pytest.raises(ConfigError) as caught:
        images.read(bad)
    assert caught.value.problems[0].startswith("images.toml:1 ")
    json.dumps(caught.value.problems)
