"""Local models: HF folders and GGUF files written from the smoke models under other names."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest
from gguf import GGMLQuantizationType, LlamaFileType

from envman.errors import UsageError
from envman.matrix.schema import Format, Matrix, Modality, Model
from envman.models import ResolvedModel, Source, UnknownArchitecture, resolve
from envman.plan.memory import kv_cache_bytes, weight_bytes
from tests.models.ggufs import mmproj, rewrite

SHAPE_FIELDS = ("layers", "hidden_size", "attention_heads", "kv_heads", "head_dim", "vocab_size", "max_context")


def shape(model: Model) -> tuple[int, ...]:
    return tuple(getattr(model, f) for f in SHAPE_FIELDS)


@pytest.mark.parametrize("family", ["llama", "gemma3", "qwen2", "phi3"])
def test_a_folder_and_a_gguf_of_the_same_weights_read_alike(
    family: str,
    real_matrix: Matrix,
    smoke: dict[str, Model],
    hf_folder: Callable[..., Path],
    gguf_file: Callable[..., Path],
) -> None:
    folder = resolve(real_matrix, str(hf_folder(family)))
    gguf = resolve(real_matrix, str(gguf_file(family)))
    assert (folder.source, gguf.source) == (Source.FOLDER, Source.GGUF)
    assert folder.model.family == gguf.model.family == family
    assert shape(folder.model) == shape(gguf.model) == shape(smoke[family])
    # two readers, two files: the safetensors headers and the GGUF tensor table count the same weights
    assert folder.model.params_b == gguf.model.params_b
    assert folder.parameters_from == "safetensors headers"
    assert gguf.parameters_from == "GGUF tensor table"
    assert folder.chat_template is gguf.chat_template is True


def test_a_folder_is_named_after_itself_and_served_from_where_it_is(
    real_matrix: Matrix, hf_folder: Callable[..., Path]
) -> None:
    path = hf_folder("llama", name="my-finetune")
    resolved = resolve(real_matrix, str(path))
    [artifact] = resolved.model.artifacts
    assert resolved.model.name == "my-finetune"
    assert resolved.model.hf_architecture == "LlamaForCausalLM"
    assert (artifact.format, artifact.repo, artifact.local_only, artifact.dtype) == (
        Format.PYTORCH, str(path), True, "bfloat16",
    )  # fmt: skip
    assert artifact.size_bytes == (path / "model.safetensors").stat().st_size
    assert resolved.files == ("config.json", "model.safetensors (header)")
    assert resolved.path == path


def test_a_gguf_file_reads_its_quantization_and_size(
    real_matrix: Matrix, gguf_file: Callable[..., Path], tmp_path: Path
) -> None:
    [path] = rewrite(gguf_file("llama"), tmp_path / "tiny-chat-Q8_0.gguf", qtype=GGMLQuantizationType.Q8_0,
                     file_type=LlamaFileType.MOSTLY_Q8_0)  # fmt: skip
    resolved = resolve(real_matrix, str(path))
    [artifact] = resolved.model.artifacts
    assert resolved.model.name == "tiny-chat-Q8_0"
    assert (artifact.format, artifact.quantization, artifact.file, artifact.repo) == (
        Format.GGUF, "Q8_0", path.name, str(tmp_path),
    )  # fmt: skip
    assert artifact.size_bytes == path.stat().st_size
    # the weights a plan counts are the file, not parameters x bits of a guessed quantization
    assert weight_bytes(resolved.model, artifact, 2.0, real_matrix) == path.stat().st_size


def test_sliding_window_layers_from_the_config_and_the_gguf(
    real_matrix: Matrix, hf_folder: Callable[..., Path], gguf_file: Callable[..., Path]
) -> None:
    # smoke-gemma3: 6 layers, window 512 (config.json and gemma3.attention.sliding_window); 5 of 6 slide.
    for spec in (hf_folder("gemma3"), gguf_file("gemma3", "g3.gguf")):
        model = resolve(real_matrix, str(spec)).model
        assert (model.sliding_window, model.sliding_layers, model.layers) == (512, 5, 6)
        per_layer_token = 2 * 1 * 64 * 2  # K and V, 1 KV head of 64, 2 bytes
        assert kv_cache_bytes(model, 4096) == per_layer_token * (1 * 4096 + 5 * 512)
    # smoke-gemma2: 26 layers, every other one slides.
    for spec in (hf_folder("gemma2", name="g2"), gguf_file("gemma2", "g2.gguf")):
        model = resolve(real_matrix, str(spec)).model
        assert (model.sliding_window, model.sliding_layers) == (512, 13)


def test_a_split_gguf_is_read_from_any_part(
    real_matrix: Matrix, gguf_file: Callable[..., Path], tmp_path: Path
) -> None:
    single = resolve(real_matrix, str(gguf_file("llama")))
    parts = rewrite(gguf_file("llama"), tmp_path / "split" / "big.gguf", split_max_tensors=8)
    assert [p.name for p in parts] == [f"big-0000{n}-of-00003.gguf" for n in (1, 2, 3)]
    for part in parts:
        resolved = resolve(real_matrix, str(part))
        [artifact] = resolved.model.artifacts
        assert artifact.file == "big-00001-of-00003.gguf"
        assert resolved.model.name == "big"
        assert artifact.size_bytes == sum(p.stat().st_size for p in parts)
        assert resolved.model.params_b == single.model.params_b
        assert resolved.files == tuple(f"{p.name} (header)" for p in parts)


def test_a_missing_or_truncated_part(real_matrix: Matrix, gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    parts = rewrite(gguf_file("llama"), tmp_path / "big.gguf", split_max_tensors=8)
    data = parts[2].read_bytes()
    parts[2].write_bytes(data[:-100])
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, str(parts[0]))
    assert caught.value.message == (
        f"{parts[2]} is truncated: its header lists {len(data)} bytes of tensors and data, "
        f"the file has {len(data) - 100}"
    )
    parts[1].unlink()
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, str(parts[0]))
    assert (
        caught.value.message
        == f"{parts[1]} is missing: big-00001-of-00003.gguf is part of a 3-part GGUF (part 2 absent)"
    )


def test_an_mmproj_beside_the_gguf_makes_it_a_vision_model(real_matrix: Matrix, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file("gemma3", "vision-gemma-F16.gguf")
    projector = mmproj(path.parent / "mmproj-vision-gemma-f16.gguf")
    resolved = resolve(real_matrix, str(path))
    [artifact] = resolved.model.artifacts
    assert resolved.model.modalities == (Modality.TEXT, Modality.IMAGE)
    assert artifact.mmproj == projector.name
    assert artifact.size_bytes == path.stat().st_size + projector.stat().st_size
    with pytest.raises(UsageError, match=r"is a vision projector \(mmproj\), not a model"):
        resolve(real_matrix, str(projector))


def test_a_folder_of_one_gguf_is_that_gguf(real_matrix: Matrix, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file("llama")
    assert resolve(real_matrix, str(path.parent)).model.artifacts[0].file == path.name


def test_remote_code_plans_with_a_warning(real_matrix: Matrix, hf_folder: Callable[..., Path]) -> None:
    path = hf_folder("llama", auto_map={"AutoModelForCausalLM": "modeling_x.XForCausalLM"})
    resolved = resolve(real_matrix, str(path))
    assert resolved.model.trust_remote_code is True
    assert resolved.warnings == (
        f"{path}/config.json names its own modelling code (auto_map): review it and pass --trust-remote-code",
    )


def test_a_multimodal_config_reads_the_text_config(real_matrix: Matrix, hf_folder: Callable[..., Path]) -> None:
    path = hf_folder("gemma3", name="gemma3-vl")
    text = json.loads((path / "config.json").read_text())
    outer = {"architectures": ["Gemma3ForConditionalGeneration"], "model_type": "gemma3", "text_config": text,
             "vision_config": {"model_type": "siglip_vision_model", "hidden_size": 64}}  # fmt: skip
    (path / "config.json").write_text(json.dumps(outer))
    model = resolve(real_matrix, str(path)).model
    assert (model.family, model.layers, model.sliding_layers) == ("gemma3", 6, 5)
    assert model.modalities == (Modality.TEXT, Modality.IMAGE)


def test_bin_weights_estimate_the_parameters_from_the_shapes(
    real_matrix: Matrix, hf_folder: Callable[..., Path]
) -> None:
    path = hf_folder("llama")
    (path / "model.safetensors").rename(path / "pytorch_model.bin")
    resolved = resolve(real_matrix, str(path))
    assert resolved.parameters_from == "config shapes (estimate)"
    assert resolved.warnings[0].startswith("parameter count estimated from the config's shapes")


def test_unknown_architecture_says_what_would_tell(real_matrix: Matrix, hf_folder: Callable[..., Path]) -> None:
    path = hf_folder("llama", architectures=["FooForCausalLM"], model_type="foo")
    with pytest.raises(UnknownArchitecture) as caught:
        resolve(real_matrix, str(path))
    assert caught.value.exit_code == 2
    assert caught.value.message == (
        f"{path}/config.json: architecture FooForCausalLM is in none of the {len(real_matrix.families)} families "
        f"of {real_matrix.path}, so which engine releases run it is not recorded"
    )
    assert "envman probe NAME --engine ENGINE" in str(caught.value.hint)
    assert "hf_architectures = ['FooForCausalLM']" in str(caught.value.hint)
    allowed = resolve(real_matrix, str(path), allow_unknown=True)
    assert allowed.model.family == ""
    assert allowed.warnings == (caught.value.message,)


def test_a_known_model_type_under_another_class_names_the_family(
    real_matrix: Matrix, hf_folder: Callable[..., Path]
) -> None:
    path = hf_folder("qwen2", architectures=["Qwen2ForSequenceClassification"])
    with pytest.raises(UnknownArchitecture) as caught:
        resolve(real_matrix, str(path))
    family = real_matrix.families["qwen2"]
    floors = ", ".join(f"{e}>={s.min_version}" for e, s in family.engines.items() if s.min_version)
    assert caught.value.message.endswith(
        f"; its model_type is that of family qwen2 ({floors}), whose models are Qwen2ForCausalLM: "
        "Qwen2ForSequenceClassification is another model class"
    )


def test_unknown_gguf_architecture(real_matrix: Matrix, gguf_file: Callable[..., Path], tmp_path: Path) -> None:
    [path] = rewrite(gguf_file("llama"), tmp_path / "odd.gguf", arch="notarealarch")
    with pytest.raises(UnknownArchitecture, match=r"architecture notarealarch is in none of the"):
        resolve(real_matrix, str(path))


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        ("no-config", "{path} is not a Hugging Face model folder: no config.json"),
        ("bad-json", "{path}/config.json is not valid JSON: Expecting value: line 1 column 1 (char 0)"),
        ("no-weights", "{path} holds no weights (no *.safetensors or *.bin files)"),
        ("bad-header", "{path}/model.safetensors: the safetensors header cannot be read "
                       "(header is not json-encoded string. Please make sure this is a correctly formatted "
                       "safetensors file.)"),
        ("short-file", "{path}/model.safetensors: the safetensors header cannot be read "
                       "(file is too small to be a valid safetensors file.)"),
        ("no-layers", "{path}/config.json has no num_hidden_layers / n_layer / num_layers / n_layers"),
    ],
)  # fmt: skip
def test_a_broken_folder_names_the_file(
    breakage: str, message: str, real_matrix: Matrix, hf_folder: Callable[..., Path]
) -> None:
    path = hf_folder("llama")
    weights = path / "model.safetensors"
    if breakage == "no-config":
        (path / "config.json").unlink()
    elif breakage == "bad-json":
        (path / "config.json").write_text("not json")
    elif breakage == "no-weights":
        weights.unlink()
    elif breakage == "bad-header":
        data = weights.read_bytes()
        weights.write_bytes(data[:8] + b"X" * 20 + data[28:])
    elif breakage == "short-file":
        weights.write_bytes(b"\x01\x02")
    elif breakage == "no-layers":
        config = json.loads((path / "config.json").read_text())
        del config["num_hidden_layers"]
        (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, str(path))
    assert caught.value.exit_code == 2
    assert caught.value.message == message.format(path=path)


def test_a_missing_path_and_an_unknown_name(real_matrix: Matrix, tmp_path: Path) -> None:
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, str(tmp_path / "nowhere.gguf"))
    assert caught.value.message == f"{tmp_path / 'nowhere.gguf'} does not exist"
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, "gemma-3-27b-itt")
    assert caught.value.message == "unknown model 'gemma-3-27b-itt'"
    assert "hub repo id (org/name[@revision]), a model folder or a .gguf file" in str(caught.value.hint)


def test_catalog_names_keep_the_curated_entry(real_matrix: Matrix) -> None:
    resolved = resolve(real_matrix, "gemma-3-27b-it")
    assert resolved.model is real_matrix.models["gemma-3-27b-it"]
    assert (resolved.source, resolved.repo, resolved.revision) == (Source.CATALOG, None, None)
    by_repo = resolve(real_matrix, "unsloth/gemma-3-27b-it-bnb-4bit@abc123")
    assert (by_repo.source, by_repo.repo, by_repo.revision) == (
        Source.CATALOG, "unsloth/gemma-3-27b-it-bnb-4bit", "abc123",
    )  # fmt: skip
    pinned = [a for a in by_repo.model.artifacts if a.revision]
    assert [a.repo for a in pinned] == ["unsloth/gemma-3-27b-it-bnb-4bit"]


def test_model_path_reads_the_weights_and_keeps_the_name(real_matrix: Matrix, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file("llama")
    named = resolve(real_matrix, "smoke-llama", model_path=path)
    assert (named.model.name, named.model.family, named.source) == ("smoke-llama", "llama", Source.GGUF)
    assert named.model.artifacts[0].quantization == "F16"  # the file's, not the catalog entry's
    bare = resolve(real_matrix, "", model_path=path)
    assert bare.model.name == "tiny-chat-F16"
    with pytest.raises(UsageError) as caught:
        resolve(real_matrix, "smoke-gemma3", model_path=path)
    assert caught.value.message == f"--model-path {path} holds a llama model (gguf:llama), not smoke-gemma3 (gemma3)"


def test_describe_and_json(real_matrix: Matrix, gguf_file: Callable[..., Path]) -> None:
    path = gguf_file("gemma3", "g3-F16.gguf")
    resolved: ResolvedModel = resolve(real_matrix, str(path))
    text = resolved.describe()
    assert text.splitlines()[0] == f"g3-F16: gemma3 (gguf:gemma3), from gguf {path}"
    assert "  attention   5 of 6 layers keep a 512-token window" in text
    data = resolved.to_json()
    assert data["source"] == "gguf"
    assert data["chat_template"] is True
    model = data["model"]
    assert isinstance(model, dict)
    assert model["artifacts"][0]["quantization"] == "F16"
