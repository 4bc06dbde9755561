"""Quantization methods that moved to a plugin package: the lock carries the plugin (lock_plugins)."""

from __future__ import annotations

from pathlib import Path

import pytest

from envman.errors import ConfigError
from envman.matrix.load import parse_matrix

REPO = Path(__file__).resolve().parents[2]


def test_the_committed_vllm_0_32_0_cuda_lock_carries_the_bitsandbytes_plugin() -> None:
    text = (REPO / "lockfiles" / "vllm-0.32.0-cuda-py3.11.txt").read_text()
    assert '# with: ["vllm-bnb-plugin"]' in text.splitlines()
    assert "\nvllm-bnb-plugin==0.0.3 \\\n" in text
    assert "\nbitsandbytes==" in text  # vllm-bnb-plugin 0.0.3 Requires-Dist bitsandbytes>=0.48.1
    for older in ("vllm-0.19.1-cuda-py3.11-x86_64-manylinux_2_31.txt", "vllm-0.32.0-cpu-py3.11.txt"):
        assert "vllm-bnb-plugin" not in (REPO / "lockfiles" / older).read_text()


def test_a_lock_plugin_that_no_quant_plugin_names_is_refused_at_load() -> None:
    path = REPO / "matrix.toml"
    text = path.read_text().replace('lock_plugins = ["vllm-bnb-plugin"]', 'lock_plugins = ["vllm-bnb-plugn"]')
    line = text.splitlines().index('lock_plugins = ["vllm-bnb-plugn"]') + 1
    with pytest.raises(ConfigError) as caught:
        parse_matrix(text, path)
    assert (
        f"matrix.toml:{line} engines.vllm.variants.cuda.lock_plugins[0]: 'vllm-bnb-plugn' is no plugin of "
        "engine_rules.vllm.quant_plugins (vllm-bnb-plugin, vllm-gguf-plugin)"
    ) in caught.value.problems[0]
