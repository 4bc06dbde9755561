"""`envman models inspect MODEL` as a user runs it."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

Cli = Callable[..., subprocess.CompletedProcess[str]]


def test_inspect_a_gguf_file(envman_cli: Cli, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file("gemma3", "my-gemma-F16.gguf")
    result = envman_cli("models", "inspect", str(path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"my-gemma-F16: gemma3 (gguf:gemma3), from gguf {path}"
    assert "  chat        template present" in lines
    assert f"  read        {path.name} (header)" in lines


def test_inspect_an_unknown_architecture_describes_it_and_warns(
    envman_cli: Cli, hf_folder: Callable[..., Path]
) -> None:
    path = hf_folder("llama", architectures=["FooForCausalLM"], model_type="foo")
    result = envman_cli("models", "inspect", str(path), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"]["family"] == ""
    assert data["warnings"][0].startswith(f"{path}/config.json: architecture FooForCausalLM is in none of the")
    assert "no engine can be planned for it until its family is in matrix.toml" in result.stderr


def test_bad_input_is_a_message_and_exit_2(envman_cli: Cli, tmp_path: Path) -> None:
    folder = tmp_path / "empty-model"
    folder.mkdir()
    result = envman_cli("models", "inspect", str(folder))
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == f"error: {folder} is not a Hugging Face model folder: no config.json"
    assert "Traceback" not in result.stderr


def test_the_catalog_list_still_answers(envman_cli: Cli) -> None:
    result = envman_cli("models", "--json")
    assert result.returncode == 0, result.stderr
    names = [m["name"] for m in json.loads(result.stdout)]
    assert "gemma-3-27b-it" in names
