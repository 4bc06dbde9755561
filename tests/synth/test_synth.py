"""Synthesized smoke models: bytes, cache, tokenizer, and both file formats (no engines)."""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import json
import os
import re
from pathlib import Path

import numpy as np
import pytest
from gguf import GGUFReader

from envman.errors import PrerequisiteError, UsageError
from envman.matrix.schema import Format, Matrix, Model
from envman.synth import SUPPORTED_ARCHITECTURES, cache, gguf_file, safetensors_file, synthesize, vocab

FAMILIES = ["gemma2", "gemma3", "llama", "mistral", "phi3", "qwen2", "qwen3"]
# MoE, MLA and the other architectures added for `envman verify` (issue 13)
MORE_FAMILIES = ["cohere", "deepseek_v2", "deepseek_v3", "gemma", "glm4", "gpt_oss", "internlm3", "mixtral",
                 "qwen2_moe", "qwen3moe"]  # fmt: skip
GGUF_ARCH = {"llama": "llama", "mistral": "llama", "qwen2": "qwen2", "qwen3": "qwen3", "gemma2": "gemma2",
             "gemma3": "gemma3", "phi3": "phi3", "qwen3moe": "qwen3moe", "mixtral": "llama",
             "deepseek_v2": "deepseek2", "glm4": "glm4", "gpt_oss": "gpt-oss", "qwen2_moe": "qwen2moe",
             "gemma": "gemma", "cohere": "command-r", "deepseek_v3": "deepseek2", "internlm3": "llama"}  # fmt: skip

# Per-layer tensors of the smoke shape (hidden 128, 2 heads, 1 KV head, head_dim 64, MLP 256).
ATTN = {"self_attn.q_proj.weight": [128, 128], "self_attn.k_proj.weight": [64, 128],
        "self_attn.v_proj.weight": [64, 128], "self_attn.o_proj.weight": [128, 128]}  # fmt: skip
MLP = {"mlp.gate_proj.weight": [256, 128], "mlp.up_proj.weight": [256, 128], "mlp.down_proj.weight": [128, 256]}
NORMS = {"input_layernorm.weight": [128], "post_attention_layernorm.weight": [128]}
SANDWICH = {"pre_feedforward_layernorm.weight": [128], "post_feedforward_layernorm.weight": [128]}
QK_NORM = {"self_attn.q_norm.weight": [64], "self_attn.k_norm.weight": [64]}
BIAS = {"self_attn.q_proj.bias": [128], "self_attn.k_proj.bias": [64], "self_attn.v_proj.bias": [64]}
PHI3 = {"self_attn.qkv_proj.weight": [256, 128], "self_attn.o_proj.weight": [128, 128],
        "mlp.gate_up_proj.weight": [512, 128], "mlp.down_proj.weight": [128, 256]}  # fmt: skip
EXPERTS = 4  # 2 per token, each 128 wide
QWEN_MOE = {"mlp.gate.weight": [EXPERTS, 128]} | {
    f"mlp.experts.{e}.{n}.weight": [128, 128] for e in range(EXPERTS) for n in ("gate_proj", "up_proj", "down_proj")
}
MIXTRAL_MOE = {"block_sparse_moe.gate.weight": [EXPERTS, 128]} | {
    f"block_sparse_moe.experts.{e}.{n}.weight": [128, 128] for e in range(EXPERTS) for n in ("w1", "w2", "w3")
}
# MLA with DeepSeek's latent sizes (kv_lora_rank 512, rope 64) and a 128-wide key (nope 64 + rope 64), value 128
MLA = {"self_attn.q_a_proj.weight": [32, 128], "self_attn.q_a_layernorm.weight": [32],
       "self_attn.q_b_proj.weight": [2 * 128, 32], "self_attn.kv_a_proj_with_mqa.weight": [512 + 64, 128],
       "self_attn.kv_a_layernorm.weight": [512], "self_attn.kv_b_proj.weight": [2 * (64 + 128), 512],
       "self_attn.o_proj.weight": [128, 2 * 128]}  # fmt: skip
SHARED = {"mlp.shared_experts.gate_proj.weight": [128, 128], "mlp.shared_experts.up_proj.weight": [128, 128],
          "mlp.shared_experts.down_proj.weight": [128, 128]}  # fmt: skip
GLM4 = {"mlp.gate_up_proj.weight": [512, 128], "mlp.down_proj.weight": [128, 256],
        "post_self_attn_layernorm.weight": [128], "post_mlp_layernorm.weight": [128]}  # fmt: skip
GPT_OSS = {"self_attn.o_proj.bias": [128], "self_attn.sinks": [2], "mlp.router.weight": [EXPERTS, 128],
           "mlp.router.bias": [EXPERTS], "mlp.experts.gate_up_proj": [EXPERTS, 128, 256],
           "mlp.experts.gate_up_proj_bias": [EXPERTS, 256], "mlp.experts.down_proj": [EXPERTS, 128, 128],
           "mlp.experts.down_proj_bias": [EXPERTS, 128]}  # fmt: skip
QWEN2_SHARED = {f"mlp.shared_expert.{n}.weight": [128, 128] for n in ("gate_proj", "up_proj", "down_proj")}
QWEN2_SHARED["mlp.shared_expert_gate.weight"] = [1, 128]
LAYER = {
    "internlm3": ATTN | MLP | NORMS,
    "cohere": ATTN | MLP | {"input_layernorm.weight": [128]},  # attention and MLP in parallel, one norm
    "gemma": ATTN | MLP | NORMS,
    "qwen2_moe": ATTN | BIAS | QWEN_MOE | QWEN2_SHARED | NORMS,
    "qwen3moe": ATTN | QK_NORM | QWEN_MOE | NORMS,
    "mixtral": ATTN | MIXTRAL_MOE | NORMS,
    "deepseek_v2": MLA | QWEN_MOE | SHARED | NORMS,  # layer 0 has the dense MLP instead (DEEPSEEK_DENSE)
    "deepseek_v3": MLA | QWEN_MOE | SHARED | NORMS | {"mlp.gate.e_score_correction_bias": [EXPERTS]},
    "glm4": ATTN | BIAS | GLM4 | NORMS,
    "gpt_oss": ATTN | BIAS | GPT_OSS | NORMS,
    "llama": ATTN | MLP | NORMS,
    "mistral": ATTN | MLP | NORMS,
    "qwen2": ATTN | BIAS | MLP | NORMS,
    "qwen3": ATTN | QK_NORM | MLP | NORMS,
    "gemma2": ATTN | MLP | NORMS | SANDWICH,
    "gemma3": ATTN | QK_NORM | MLP | NORMS | SANDWICH,
    "phi3": PHI3 | NORMS,
}
DEEPSEEK_DENSE = MLA | MLP | NORMS
GEMMA_NORMS = {"gemma", "gemma2", "gemma3"}
TIED = GEMMA_NORMS | {"cohere"}
# GGUF tensors fewer than HF ones: per-expert tensors stacked (3 x (experts - 1) per MoE layer); gpt-oss
# splits its fused gate_up weight and bias into gate and up (one more each per layer)
STACKED = {"qwen3moe": 2 * 3 * (EXPERTS - 1), "qwen2_moe": 2 * 3 * (EXPERTS - 1), "mixtral": 2 * 3 * (EXPERTS - 1),
           "deepseek_v2": 3 * (EXPERTS - 1), "deepseek_v3": 3 * (EXPERTS - 1),
           "gpt_oss": -2 * 2}  # fmt: skip

# model.safetensors of smoke-gemma3 at SYNTH_VERSION 1. If this changes on purpose, bump
# SYNTH_VERSION so caches made by the old code are not taken for the new one.
GEMMA3_SAFETENSORS_SHA256 = "9fbec5ef595fd1a0d83a7eda9477654dcab2c45e8f29abe3fce57e77574e9131"


@pytest.fixture(scope="session")
def smoke(real_matrix: Matrix) -> dict[str, Model]:
    return {m.family: m for m in real_matrix.models.values() if m.smoke}


def file_digests(directory: Path) -> dict[str, str]:
    return {
        str(p.relative_to(directory)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(directory.rglob("*"))
        if p.is_file()
    }


def test_every_smoke_model_of_the_catalog_can_be_synthesized(smoke: dict[str, Model], real_matrix: Matrix) -> None:
    assert sorted(smoke) == sorted(FAMILIES + MORE_FAMILIES)
    every = [m for m in real_matrix.models.values() if m.smoke]
    assert len(every) == len(smoke) + 1  # gemma3 twice: smoke-gemma3 and smoke-gemma3-vision
    assert {m.hf_architecture for m in every} <= set(SUPPORTED_ARCHITECTURES)
    assert smoke["gemma3"].name == "smoke-gemma3"  # the one `envman verify` takes for gemma3


@pytest.mark.parametrize("family", FAMILIES + MORE_FAMILIES)
def test_same_model_same_bytes(family: str, smoke: dict[str, Model], tmp_path: Path) -> None:
    model = smoke[family]
    first = synthesize(model, Format.GGUF, root=tmp_path / "a").parent
    second = synthesize(model, Format.GGUF, root=tmp_path / "b").parent
    assert first.relative_to(tmp_path / "a") == second.relative_to(tmp_path / "b")
    digests = file_digests(first)
    assert sorted(digests) == sorted(
        [f"{model.name}-F16.gguf"]
        + [f"hf/{n}" for n in ("config.json", "generation_config.json", "model.safetensors",
                                "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json")]
    )  # fmt: skip
    assert digests == file_digests(second)


def test_weights_do_not_depend_on_the_numpy_release(smoke: dict[str, Model], tmp_path: Path) -> None:
    hf = synthesize(smoke["gemma3"], Format.PYTORCH, root=tmp_path)
    digest = hashlib.sha256((hf / "model.safetensors").read_bytes()).hexdigest()
    assert digest == GEMMA3_SAFETENSORS_SHA256


def test_layout_and_second_call_reuses_the_cache(
    smoke: dict[str, Model], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = smoke["gemma3"]
    monkeypatch.setenv("ENVMAN_HOME", str(tmp_path / "home"))
    hf = synthesize(model, Format.PYTORCH)
    gguf = synthesize(model, Format.GGUF)
    entry = tmp_path / "home" / "models" / "smoke-gemma3" / cache.digest(model)
    assert (hf, gguf) == (entry / "hf", entry / "smoke-gemma3-F16.gguf")
    assert re.fullmatch(r"[0-9a-f]{16}", entry.name)
    assert entry.stat().st_mode & 0o777 == 0o755
    mtimes = {p: p.stat().st_mtime_ns for p in entry.rglob("*")}

    def must_not_write(*args: object) -> None:
        raise AssertionError("a cached model was written again")

    monkeypatch.setattr(cache, "_write", must_not_write)
    assert synthesize(model, Format.GGUF) == gguf
    assert synthesize(model, Format.PYTORCH) == hf
    assert {p: p.stat().st_mtime_ns for p in entry.rglob("*")} == mtimes
    assert [p.name for p in entry.parent.iterdir()] == [entry.name]


def test_a_new_synthesizer_version_is_a_new_entry(smoke: dict[str, Model], monkeypatch: pytest.MonkeyPatch) -> None:
    before = cache.digest(smoke["llama"])
    monkeypatch.setattr(cache, "SYNTH_VERSION", cache.SYNTH_VERSION + 1)
    assert cache.digest(smoke["llama"]) != before
    assert cache.digest(dataclasses.replace(smoke["llama"], vocab_size=2048)) != before


def test_a_failure_mid_write_leaves_no_cache_entry(
    smoke: dict[str, Model], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = smoke["qwen3"]

    def disk_full(path: Path, *args: object) -> None:
        path.write_bytes(b"GGUF half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(gguf_file, "write", disk_full)
    with pytest.raises(PrerequisiteError, match="No space left"):  # exit 3 with the path, not a traceback
        synthesize(model, Format.PYTORCH, root=tmp_path)
    parent = cache.entry(model, tmp_path).parent
    assert list(parent.iterdir()) == []  # neither the entry nor the staging directory

    monkeypatch.undo()
    killed = parent / f".{cache.digest(model)}.abandoned"  # what a SIGKILL mid-write leaves
    (killed / "hf").mkdir(parents=True)
    os.utime(killed, (0, 0))
    recent = parent / f".{cache.digest(model)}.in-progress"  # perhaps another process, still writing
    recent.mkdir()
    hf = synthesize(model, Format.PYTORCH, root=tmp_path)  # the next call makes it whole
    assert (hf / "model.safetensors").is_file()
    assert (hf.parent / "smoke-qwen3-F16.gguf").stat().st_size > 500_000
    assert sorted(p.name for p in parent.iterdir()) == sorted([hf.parent.name, recent.name])


def test_unknown_architecture_names_the_supported_ones(smoke: dict[str, Model], tmp_path: Path) -> None:
    model = dataclasses.replace(smoke["llama"], name="smoke-olmo", hf_architecture="OlmoForCausalLM")
    with pytest.raises(UsageError) as raised:
        synthesize(model, Format.PYTORCH, root=tmp_path)
    assert raised.value.message == "cannot synthesize smoke-olmo: architecture OlmoForCausalLM is not supported"
    assert raised.value.hint == (
        "envman synthesizes CohereForCausalLM, DeepseekV2ForCausalLM, DeepseekV3ForCausalLM, Gemma2ForCausalLM, "
        "Gemma3ForCausalLM, "
        "Gemma3ForConditionalGeneration, GemmaForCausalLM, Glm4ForCausalLM, "
        "GptOssForCausalLM, InternLM3ForCausalLM, LlamaForCausalLM, MistralForCausalLM, MixtralForCausalLM, "
        "Phi3ForCausalLM, "
        "Qwen2ForCausalLM, Qwen2MoeForCausalLM, Qwen3ForCausalLM, Qwen3MoeForCausalLM"
    )
    assert raised.value.exit_code == 2
    assert not (tmp_path / "models").exists()


def test_only_smoke_models_and_local_formats(smoke: dict[str, Model], real_matrix: Matrix, tmp_path: Path) -> None:
    real = next(m for m in real_matrix.models.values() if not m.smoke and m.hf_architecture == "Gemma3ForCausalLM")
    with pytest.raises(UsageError, match=f"cannot synthesize {real.name}: it is not a smoke model"):
        synthesize(real, Format.PYTORCH, root=tmp_path)
    with pytest.raises(UsageError, match="cannot synthesize smoke-llama as awq: only pytorch and gguf"):
        synthesize(smoke["llama"], Format.AWQ, root=tmp_path)


# --- the tokenizer ---------------------------------------------------------------------------

# The two split regexes, for ASCII text (\p{L} is a letter, \p{N} a digit)
SPLIT = {
    vocab.GPT2: re.compile(r"'s|'t|'re|'ve|'m|'ll|'d| ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+(?!\S)|\s+"),
    vocab.QWEN2: re.compile(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\nA-Za-z0-9]?[A-Za-z]+|[0-9]"
        r"| ?[^\sA-Za-z0-9]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    ),
}
PRE = dict.fromkeys(("qwen2", "qwen3", "qwen3moe", "qwen2_moe"), vocab.QWEN2)  # the others split as GPT-2


def bpe_encode(voc: vocab.Vocab, text: str, pre: str = vocab.GPT2) -> list[int]:
    """Byte-level BPE, as tokenizers and llama.cpp run it (ASCII text only)."""
    ranks = {pair: i for i, pair in enumerate(voc.merges)}
    ids: list[int] = []
    for word in SPLIT[pre].findall(text):
        parts = [c.replace(" ", vocab.SPACE).replace("\n", vocab.NEWLINE) for c in word]
        while len(parts) > 1:
            pairs = [(ranks.get((a, b), len(ranks)), i) for i, (a, b) in enumerate(itertools.pairwise(parts))]
            rank, i = min(pairs)
            if rank == len(ranks):
                break
            parts[i : i + 2] = [parts[i] + parts[i + 1]]
        ids += [voc.id(p) for p in parts]
    return ids


def test_every_token_decodes_to_utf8_text() -> None:
    voc = vocab.build_vocab(1024)
    assert len(voc.tokens) == len(set(voc.tokens)) == 1024
    assert voc.tokens[: voc.special_count] == vocab.SPECIALS
    for i in range(1024):
        text = vocab.decoded(voc, i).decode("utf-8")  # strict: raises on a partial sequence
        assert text.isascii()
        assert text.isprintable() or (text.strip(" \n") == "" and text) or i < voc.special_count
    assert {a + b for a, b in voc.merges} <= set(voc.tokens)
    assert all(a in voc.tokens and b in voc.tokens for a, b in voc.merges)


@pytest.mark.parametrize("pre", [vocab.GPT2, vocab.QWEN2])
def test_ascii_text_round_trips(pre: str) -> None:
    voc = vocab.build_vocab(1024)
    text = "Hello, world! The quick brown fox jumps over the lazy dog.\n  It's 42 degrees; {x: [1, 2]} ~`|\\"
    ids = bpe_encode(voc, text, pre)
    assert b"".join(vocab.decoded(voc, i) for i in ids).decode() == text
    assert len(ids) < 0.7 * len(text)  # merges are used
    assert bpe_encode(voc, "\n", pre) == [voc.id(vocab.NEWLINE)]
    assert [voc.tokens[i] for i in bpe_encode(voc, " 42", pre)] == (
        ["Ġ4", "2"] if pre == vocab.GPT2 else ["Ġ", "4", "2"]
    )


def test_vocabulary_sizes() -> None:
    assert len(vocab.build_vocab(102).merges) == 0
    big = vocab.build_vocab(2000)
    assert big.special_count == 6 + (2000 - 102 - len(big.merges))
    assert big.tokens[6] == "<|reserved_0|>"
    with pytest.raises(ValueError, match="at least 102 tokens"):
        vocab.build_vocab(64)


# --- the two files -----------------------------------------------------------------------------


@pytest.mark.parametrize("family", FAMILIES + MORE_FAMILIES)
def test_safetensors_names_and_shapes(family: str, smoke: dict[str, Model], tmp_path: Path) -> None:
    hf = synthesize(smoke[family], Format.PYTORCH, root=tmp_path)
    header = safetensors_file.read_header(hf / "model.safetensors")
    assert header.pop("__metadata__") == {"format": "pt"}
    expected = {"model.embed_tokens.weight": [1024, 128], "model.norm.weight": [128]}
    if family not in TIED:
        expected["lm_head.weight"] = [1024, 128]
    for i in range(smoke[family].layers):
        layer = DEEPSEEK_DENSE if family.startswith("deepseek") and i == 0 else LAYER[family]
        expected |= {f"model.layers.{i}.{name}": shape for name, shape in layer.items()}
    assert {name: h["shape"] for name, h in header.items()} == expected
    assert {h["dtype"] for h in header.values()} == {"BF16"}
    data = (hf / "model.safetensors").read_bytes()
    header_size = int.from_bytes(data[:8], "little")
    assert header_size % 8 == 0
    ranges = sorted(h["data_offsets"] for h in header.values())
    assert ranges[0][0] == 0
    assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
    assert len(data) == 8 + header_size + ranges[-1][1]


@pytest.mark.parametrize("family", FAMILIES + MORE_FAMILIES)
def test_gguf_holds_the_same_weights(family: str, smoke: dict[str, Model], tmp_path: Path) -> None:
    model = smoke[family]
    path = synthesize(model, Format.GGUF, root=tmp_path)
    hf = safetensors_file.read(path.parent / "hf" / "model.safetensors")
    reader = GGUFReader(path)
    field = reader.fields["general.architecture"]
    assert bytes(field.parts[field.data[0]]).decode() == GGUF_ARCH[family]
    tokens = reader.fields["tokenizer.ggml.tokens"]
    assert [bytes(tokens.parts[i]).decode() for i in tokens.data] == list(vocab.build_vocab(1024).tokens)
    pre = reader.fields["tokenizer.ggml.pre"]
    assert bytes(pre.parts[pre.data[0]]).decode() == PRE.get(family, vocab.GPT2)
    assert len(reader.tensors) == len(hf) - STACKED.get(family, 0)

    by_name = {t.name: t for t in reader.tensors}
    embd = by_name["token_embd.weight"]
    assert embd.tensor_type.name == "F16"
    assert np.array_equal(np.asarray(embd.data, dtype=np.float32), hf["model.embed_tokens.weight"])
    norm = by_name["output_norm.weight"]
    assert norm.tensor_type.name == "F32"
    shift = 1.0 if family in GEMMA_NORMS else 0.0  # gemma: llama.cpp multiplies by (1 + w) as stored
    assert np.array_equal(np.asarray(norm.data), hf["model.norm.weight"] + shift)
    if family in ("llama", "mistral", "internlm3"):  # q rows permuted for llama.cpp's interleaved RoPE
        q = hf["model.layers.1.self_attn.q_proj.weight"]
        assert np.array_equal(np.asarray(by_name["blk.1.attn_q.weight"].data, np.float32), gguf_file.permute_rows(q, 2))
        assert not np.array_equal(gguf_file.permute_rows(q, 2), q)


def gguf_array(path: Path, name: str) -> np.ndarray:
    tensor = next(t for t in GGUFReader(path).tensors if t.name == name)
    return np.asarray(tensor.data, dtype=np.float32)


@pytest.mark.parametrize(("family", "expert"), [("qwen3moe", "mlp.experts.{e}.up_proj"),
                                                ("qwen2_moe", "mlp.experts.{e}.up_proj"),
                                                ("mixtral", "block_sparse_moe.experts.{e}.w3"),
                                                ("deepseek_v2", "mlp.experts.{e}.up_proj"),
                                                ("deepseek_v3", "mlp.experts.{e}.up_proj")])  # fmt: skip
def test_gguf_stacks_the_experts_in_order(family: str, expert: str, smoke: dict[str, Model], tmp_path: Path) -> None:
    path = synthesize(smoke[family], Format.GGUF, root=tmp_path)
    hf = safetensors_file.read(path.parent / "hf" / "model.safetensors")
    stacked = np.stack([hf[f"model.layers.1.{expert.format(e=e)}.weight"] for e in range(EXPERTS)])
    assert np.array_equal(gguf_array(path, "blk.1.ffn_up_exps.weight"), stacked)  # [experts, out, in]


def test_gpt_oss_gguf_splits_the_interleaved_gate_and_up(smoke: dict[str, Model], tmp_path: Path) -> None:
    path = synthesize(smoke["gpt_oss"], Format.GGUF, root=tmp_path)
    hf = safetensors_file.read(path.parent / "hf" / "model.safetensors")
    fused = hf["model.layers.0.mlp.experts.gate_up_proj"]  # [experts, in, 2 * out]: gate, up, gate, up ...
    assert np.array_equal(gguf_array(path, "blk.0.ffn_gate_exps.weight"), fused[:, :, 0::2].transpose(0, 2, 1))
    assert np.array_equal(gguf_array(path, "blk.0.ffn_up_exps.weight"), fused[:, :, 1::2].transpose(0, 2, 1))
    bias = hf["model.layers.0.mlp.experts.gate_up_proj_bias"]
    assert np.array_equal(gguf_array(path, "blk.0.ffn_up_exps.bias"), bias[:, 1::2])
    down = hf["model.layers.0.mlp.experts.down_proj"]
    assert np.array_equal(gguf_array(path, "blk.0.ffn_down_exps.weight"), down.transpose(0, 2, 1))
    by_name = {t.name: t for t in GGUFReader(path).tensors}
    assert by_name["blk.0.ffn_up_exps.bias"].tensor_type.name == "F32"  # llama.cpp's CPU add takes F32 only
    assert by_name["blk.0.attn_sinks.weight"].tensor_type.name == "F32"


def test_the_vision_language_model_is_the_text_model_beside_a_vision_tower(real_matrix: Matrix, tmp_path: Path) -> None:
    model = real_matrix.models["smoke-gemma3-vision"]
    hf = synthesize(model, Format.PYTORCH, root=tmp_path)
    assert sorted(p.name for p in hf.parent.iterdir()) == ["hf"]  # no GGUF: llama.cpp would need an mmproj too
    assert sorted(p.name for p in hf.iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "preprocessor_config.json",
        "processor_config.json", "special_tokens_map.json", "tokenizer.json", "tokenizer_config.json",
    ]  # fmt: skip
    header = safetensors_file.read_header(hf / "model.safetensors")
    header.pop("__metadata__")
    text = {n.removeprefix("language_model.") for n in header if n.startswith("language_model.")}
    assert text == {n for n in header_of(real_matrix, "smoke-gemma3", tmp_path)}  # the same tensors as smoke-gemma3
    tower = {n: h["shape"] for n, h in header.items() if not n.startswith("language_model.")}
    assert tower["vision_tower.vision_model.embeddings.patch_embedding.weight"] == [128, 3, 14, 14]
    assert tower["vision_tower.vision_model.embeddings.position_embedding.weight"] == [4, 128]  # (28 / 14) ** 2
    assert tower["multi_modal_projector.mm_input_projection_weight"] == [128, 128]
    assert len(tower) == 3 + 16 + 2 + 2  # embeddings, one encoder layer, post_layernorm, projector

    config = json.loads((hf / "config.json").read_text())
    voc = vocab.build_vocab(1024, ("<start_of_image>", "<end_of_image>", "<image_soft_token>"))
    assert (config["boi_token_index"], config["eoi_token_index"], config["image_token_index"]) == (6, 7, 8)
    assert [voc.tokens[i] for i in (6, 7, 8)] == ["<start_of_image>", "<end_of_image>", "<image_soft_token>"]
    assert config["text_config"]["model_type"] == "gemma3_text"
    assert config["mm_tokens_per_image"] == 4
    tokenizer = json.loads((hf / "tokenizer.json").read_text())
    assert tokenizer["model"]["vocab"]["<image_soft_token>"] == 8
    assert [t["content"] for t in tokenizer["added_tokens"]][6:9] == list(voc.tokens[6:9])

    with pytest.raises(UsageError, match="cannot synthesize smoke-gemma3-vision as gguf: it has no gguf artifact"):
        synthesize(model, Format.GGUF, root=tmp_path)


def header_of(matrix: Matrix, name: str, root: Path) -> set[str]:
    hf = synthesize(matrix.models[name], Format.PYTORCH, root=root)
    names = set(safetensors_file.read_header(hf / "model.safetensors"))
    return names - {"__metadata__"}


def test_images_and_ci_keep_a_text_smoke_model_though_the_vision_one_comes_first(real_matrix: Matrix) -> None:
    """smoke-gemma3-vision is listed before smoke-gemma3 (so that verify keeps smoke-gemma3), and it has
    no GGUF: a llama.cpp image smoked with it could not start. Before the fix the Dockerfiles took it."""
    from packaging.version import Version

    from envman.docker.dockerfile import smoke_model
    from envman.matrix.combinations import Combination

    names = [m.name for m in real_matrix.models.values() if m.smoke]
    assert names.index("smoke-gemma3-vision") < names.index("smoke-gemma3")
    for engine, version in [("llama-cpp-python", "0.3.8"), ("xllamacpp", "2026.10.11549"), ("mlx-lm", "0.32.2")]:
        assert smoke_model(real_matrix, Combination(engine, Version(version), "cpu")).name == "smoke-gemma3"


def test_deepseek_v3_gguf_carries_the_routing_correction_bias(smoke: dict[str, Model], tmp_path: Path) -> None:
    path = synthesize(smoke["deepseek_v3"], Format.GGUF, root=tmp_path)
    hf = safetensors_file.read(path.parent / "hf" / "model.safetensors")
    bias = hf["model.layers.1.mlp.gate.e_score_correction_bias"]
    assert np.array_equal(gguf_array(path, "blk.1.exp_probs_b.bias"), bias)
    fields = GGUFReader(path).fields
    assert int(fields["deepseek2.expert_gating_func"].parts[-1][0]) == 2  # sigmoid
