"""Run ``llama_cpp.server`` (llama-cpp-python) with the settings envman planned, and no others.

envman runs ``python -m envman_llama_cpp_server --model F.gguf ...`` with the environment's
interpreter; every argument goes to ``llama_cpp.server`` unchanged. It imports nothing from
envman. llama_cpp.server reads more than its argv (llama_cpp_python-0.3.8 and 0.3.36,
llama_cpp/server/):

- ``ServerSettings`` is a pydantic-settings ``BaseSettings`` with no env prefix: its ``api_key``
  comes from ``API_KEY`` unless ``--api_key`` is given (settings.py). envman passes the key in
  ``ENVMAN_API_KEY`` (argv is readable by every local user); this module moves it to
  ``API_KEY``, and removes an ``API_KEY`` inherited from the user's shell when envman planned
  no key, so the server is open or closed as planned;
- ``__main__.py`` lets ``HOST``/``PORT`` in the environment override ``--host``/``--port``
  (``os.getenv("HOST", server_settings.host)``): both are removed, the flags decide;
- ``CONFIG_FILE`` replaces every flag with a config file's settings: removed too.

Threads: ``ModelSettings`` defaults ``n_threads`` to half the CPUs and ``n_threads_batch`` to all
of them (0.3.8 and 0.3.36). llama.cpp's barriers spin, so for a tiny model more threads only
wait on each other, and on a busy host they stall (envman_xllamacpp_server's note, measured with
bench/xllamacpp_threads.py). A model file under :data:`SMALL_MODEL_BYTES` gets
``--n_threads 1 --n_threads_batch 1`` unless the command sets either.
"""

from __future__ import annotations

import os
import runpy
import sys

PROG = "envman_llama_cpp_server"
IGNORED = ("HOST", "PORT", "CONFIG_FILE", "API_KEY")
SMALL_MODEL_BYTES = 64 * 1024 * 1024  # as envman_xllamacpp_server's


def with_threads(args: list[str]) -> list[str]:
    """``args``, with one thread for a small model file where no thread count was given."""
    if any(a.split("=", 1)[0] in ("--n_threads", "--n_threads_batch") for a in args):
        return args
    model = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--model"), None)
    if model is None:
        model = next((a.split("=", 1)[1] for a in args if a.startswith("--model=")), None)
    try:
        small = model is not None and os.path.getsize(model) < SMALL_MODEL_BYTES
    except OSError:
        small = False  # llama_cpp.server reports the missing file
    return [*args, "--n_threads", "1", "--n_threads_batch", "1"] if small else args


def main(argv: list[str] | None = None) -> int:
    key = os.environ.pop("ENVMAN_API_KEY", "")
    for name in IGNORED:
        os.environ.pop(name, None)
    if key:
        os.environ["API_KEY"] = key
    sys.argv = [f"{PROG} (llama_cpp.server)", *with_threads(sys.argv[1:] if argv is None else argv)]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
