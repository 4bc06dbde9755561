"""envman_transformers_server's prompt for releases whose apply_chat_template cannot add the
generation prompt (before 4.34 none; 4.34's passes the keyword on to encoding). The launcher
runs in the engine's environment: it is imported here as a file, as python -m finds it there."""

from __future__ import annotations

import json
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

from .launchers import load


@pytest.fixture(scope="module")
def launcher() -> ModuleType:
    return load("envman_transformers_server")


TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] "
    "+ '<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


def test_the_folder_template_is_rendered_with_the_generation_prompt(launcher: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text(json.dumps({"chat_template": TEMPLATE}))
    tokenizer = SimpleNamespace(bos_token="<bos>", eos_token="<eos>")
    text = launcher.render_chat_template(str(tmp_path), [{"role": "user", "content": "hi"}], tokenizer)
    assert text == "<bos><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"


def test_a_folder_without_a_template_is_a_request_error(launcher: ModuleType, tmp_path: Path) -> None:
    (tmp_path / "tokenizer_config.json").write_text("{}")
    with pytest.raises(ValueError, match="has no chat template"):
        launcher.render_chat_template(str(tmp_path), [], SimpleNamespace())


class Transformers434:
    def apply_chat_template(self, conversation: Any, chat_template: Any = None, tokenize: bool = True,
                            **kwargs: Any) -> Any:  # fmt: skip
        raise AssertionError("4.34's passes add_generation_prompt on to encoding")


class Transformers436:
    def apply_chat_template(self, conversation: Any, add_generation_prompt: bool = False, **kwargs: Any) -> Any:
        return [1, 2]


def test_which_releases_take_the_generation_prompt(launcher: ModuleType) -> None:
    assert not launcher.takes_generation_prompt(SimpleNamespace())  # < 4.34: no apply_chat_template
    assert not launcher.takes_generation_prompt(Transformers434())
    assert launcher.takes_generation_prompt(Transformers436())


def test_a_load_failure_is_one_exception_line(launcher: ModuleType) -> None:
    error = RuntimeError("Error(s) in loading state_dict for LlamaForCausalLM:\n\tsize mismatch for k_proj")
    assert launcher.error_line(error) == (
        "RuntimeError: Error(s) in loading state_dict for LlamaForCausalLM: size mismatch for k_proj"
    )


def test_image_url_parts_become_image_parts_and_pictures(launcher: ModuleType, tmp_path: Path) -> None:
    from envman.run.http import image_message

    messages = [{"role": "system", "content": "be brief"}, {"role": "user", "content": image_message()}]
    shaped, images = launcher.with_images(messages)
    assert shaped[0] == messages[0]
    assert [p["type"] for p in shaped[1]["content"]] == ["text", "image"]
    [picture] = images
    assert picture.mode == "RGB"
    assert picture.size[0] > 0
    hostile = [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "http://127.0.0.1:1/x.png"}}]}]
    with pytest.raises(ValueError, match="must be a data:image"):
        launcher.with_images(hostile)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma3", "vision_config": {}}))
    assert launcher.takes_images(str(tmp_path))
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gemma3_text"}))
    assert not launcher.takes_images(str(tmp_path))
