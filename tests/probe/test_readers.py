"""Readers on small hand-made artifacts shaped like the real ones."""

from __future__ import annotations

import io
import tarfile
import zipfile
from pathlib import Path

from envman.probe.readers import load_readers

READERS = load_readers()


def sdist(path: Path, files: dict[str, str]) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"{path.name.removesuffix('.tar.gz')}/{name}")
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return path


def wheel(path: Path, files: dict[str, str | bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def test_vllm_registry_skips_previously_supported_models(tmp_path: Path) -> None:
    registry = """
_TEXT_GENERATION_MODELS = {
    "Gemma3ForCausalLM": ("gemma3", "Gemma3ForCausalLM"),
    **_OTHER,
}
_PREVIOUSLY_SUPPORTED_MODELS = {"MllamaForConditionalGeneration": "0.10.2"}
"""
    artifact = sdist(tmp_path / "vllm-1.0.tar.gz", {"vllm/model_executor/models/registry.py": registry})
    found = READERS["vllm-registry"].read(artifact)
    assert found.names == {"Gemma3ForCausalLM"}
    assert found.source == "vllm/model_executor/models/registry.py"


def test_transformers_reads_every_model_type_of_the_config_mapping(tmp_path: Path) -> None:
    configuration_auto = """
CONFIG_MAPPING_NAMES = OrderedDict(
    [
        ("gemma3", "Gemma3Config"),
        ("gemma3_text", "Gemma3TextConfig"),
    ]
)
CONFIG_MAPPING_NAMES.update({"mimi_decoder": "MimiDecoderConfig"})
"""
    artifact = wheel(
        tmp_path / "transformers-1.0-py3-none-any.whl",
        {"transformers/models/auto/configuration_auto.py": configuration_auto},
    )
    assert READERS["transformers-models"].read(artifact).names == {"gemma3", "gemma3_text", "mimi_decoder"}


def test_library_strings_match_whole_strings_only(tmp_path: Path) -> None:
    # Not an x86-64 ELF file, so the reader falls back to whole NUL-terminated strings.
    library = b"\x00general.architecture\x00gemma2\x00gemma3n\x00chatglm4\x00"
    artifact = wheel(tmp_path / "x-1.0-cp311-cp311-manylinux_2_17_x86_64.whl", {"x/x.cpython-311.so": library})
    names = READERS["llamacpp-strings"].read(artifact).names
    assert {"gemma2", "gemma3n", "chatglm4"} <= names
    assert "gemma3" not in names
    assert "glm4" not in names


def test_llama_cpp_source_reads_the_arch_table(tmp_path: Path) -> None:
    source = """
static const std::map<llm_arch, const char *> LLM_ARCH_NAMES = {
    { LLM_ARCH_LLAMA,   "llama"     },
    { LLM_ARCH_GEMMA3,  "gemma3"    },
    { LLM_ARCH_UNKNOWN, "(unknown)" },
};
"""
    artifact = sdist(tmp_path / "llama_cpp_python-1.0.tar.gz", {"vendor/llama.cpp/src/llama-arch.cpp": source})
    found = READERS["llamacpp-source"].read(artifact)
    assert {"llama", "gemma3"} <= found.names
    assert found.source == "vendor/llama.cpp/src/llama-arch.cpp"


def test_sglang_reads_entry_classes(tmp_path: Path) -> None:
    artifact = wheel(
        tmp_path / "sglang-1.0-py3-none-any.whl",
        {
            "sglang/srt/models/gemma3.py": "EntryClass = [Gemma3ForCausalLM, Gemma3ForConditionalGeneration]\n",
            "sglang/srt/models/qwen3.py": "EntryClass = Qwen3ForCausalLM\n",
        },
    )
    assert READERS["sglang-models"].read(artifact).names == {
        "Gemma3ForCausalLM",
        "Gemma3ForConditionalGeneration",
        "Qwen3ForCausalLM",
    }


def test_lmdeploy_reads_both_backends_but_not_removed_models(tmp_path: Path) -> None:
    artifact = wheel(
        tmp_path / "lmdeploy-1.0-cp311-cp311-win_amd64.whl",
        {
            "lmdeploy/pytorch/models/module_map.py": (
                "MODULE_MAP = dict()\nREMOVED_MODEL_MAP = {'QWenLMHeadModel': 'Qwen'}\n"
                "MODULE_MAP.update({'LlamaForCausalLM': 'x.LlamaForCausalLM'})\n"
            ),
            "lmdeploy/turbomind/supported_models.py": "SUPPORTED_ARCHS = dict(InternVLChatModel='internvl')\n",
        },
    )
    assert READERS["lmdeploy-archs"].read(artifact).names == {"LlamaForCausalLM", "InternVLChatModel"}


def test_mlx_reads_model_modules_and_remapping(tmp_path: Path) -> None:
    artifact = wheel(
        tmp_path / "mlx_lm-1.0-py3-none-any.whl",
        {
            "mlx_lm/models/gemma3_text.py": "",
            "mlx_lm/models/cache.py": "",
            "mlx_lm/utils.py": 'MODEL_REMAPPING = {"mistral": "llama"}\n',
        },
    )
    assert READERS["mlx-models"].read(artifact).names == {"gemma3_text", "mistral"}
