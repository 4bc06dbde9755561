"""Run ``mlx_lm.server`` so that requests may name the model by envman's served name.

envman runs ``python -m envman_mlx_lm_server --served-model-name N --model DIR --host H
--port P`` with the environment's interpreter; it imports nothing from envman. Everything but
``--served-model-name`` goes to mlx_lm.server unchanged.

mlx_lm.server has no served-name option: a request's ``model`` is looked up in
``ModelProvider._model_map`` (where only ``"default_model"`` maps to ``--model``) and anything
else is loaded as a path or hub repo (mlx_lm-0.32.2 mlx_lm/server.py ``ModelProvider.load``);
a client asking for ``N`` would make it download ``N`` from the hub. This module maps ``N`` to
``--model`` as well, then runs mlx_lm.server's own ``main()``.

When the model cannot be loaded, mlx_lm.server's generation thread dies (it logs "generation
thread died" and sets ``_generation_failed``) while its HTTP server keeps answering ``/health``
with 503 for ever (``ResponseGenerator._run_generate``, mlx_lm-0.32.2). A server that can never
answer exits here with status 1, so whoever started it sees the failure and its traceback at
once instead of waiting out a start-up timeout.
"""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

PROG = "envman_mlx_lm_server"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0], add_help=False)
    parser.add_argument("--served-model-name", required=True)
    ours, rest = parser.parse_known_args(argv)
    import mlx_lm.server as server  # type: ignore[import-not-found,unused-ignore]  # only in the engine's environment

    base: Any = server.ModelProvider

    class ServedNameProvider(base):  # type: ignore[misc]
        def __init__(self, cli_args: Any) -> None:
            super().__init__(cli_args)
            maps = ("_model_map", "_adapter_map", "_draft_model_map")
            if all(hasattr(self, m) for m in maps):
                for m in maps:
                    getattr(self, m)[ours.served_model_name] = getattr(self, m)["default_model"]
            else:  # another mlx-lm layout: requests must then name "default_model" or the path
                name = ours.served_model_name
                print(f"{PROG}: this mlx-lm has no model map; {name!r} is not mapped", file=sys.stderr)

    server.ModelProvider = ServedNameProvider  # main() builds ModelProvider(args) from the module
    _exit_when_generation_dies(server)
    sys.argv = [f"{PROG} (mlx_lm.server)", *rest]
    server.main()
    return 0


def _exit_when_generation_dies(server: Any) -> None:
    generator: Any = getattr(server, "ResponseGenerator", None)
    run = getattr(generator, "_run_generate", None)
    if run is None:  # another mlx-lm layout: its own behaviour
        return

    def run_generate(self: Any) -> None:
        run(self)
        if getattr(self, "_generation_failed", False) and not getattr(self, "_stop", False):
            print(f"{PROG}: the generation thread died (its traceback is above); exiting", file=sys.stderr, flush=True)
            sys.stdout.flush()
            os._exit(1)

    generator._run_generate = run_generate


if __name__ == "__main__":
    sys.exit(main())
