"""Run an engine whose server takes its API key only as a command-line option, without the key on argv.

``python -m envman_secret_args --flag FLAG (--module MOD | --script NAME) -- ARGS...`` reads
the key from ``ENVMAN_API_KEY``, removes it from the environment, and runs the engine's
module (or console script) in this process with ``ARGS FLAG KEY`` as its ``sys.argv``. The
process's own command line (``/proc/PID/cmdline``, what ``ps`` shows every local user) is
this launcher's, which carries no key. Standard library only: it runs in the engine's
environment.
"""

from __future__ import annotations

import os
import runpy
import sys
from importlib.metadata import entry_points

KEY_VARIABLE = "ENVMAN_API_KEY"


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print("usage: python -m envman_secret_args --flag FLAG (--module M | --script S) -- ARGS", file=sys.stderr)
        return 2
    cut = argv.index("--")
    options, args = argv[:cut], argv[cut + 1 :]
    settings = dict(zip(options[::2], options[1::2], strict=False))
    flag = settings.get("--flag")
    key = os.environ.pop(KEY_VARIABLE, None)
    extra = [flag, key] if flag and key else []
    if "--module" in settings:
        sys.argv = [settings["--module"], *args, *extra]
        runpy.run_module(settings["--module"], run_name="__main__", alter_sys=True)
        return 0
    if "--script" in settings:
        found = entry_points(group="console_scripts", name=settings["--script"])
        if not found:
            print(f"envman_secret_args: no console script {settings['--script']!r} here", file=sys.stderr)
            return 127
        sys.argv = [settings["--script"], *args, *extra]
        result = next(iter(found)).load()()
        return result if isinstance(result, int) else 0
    print("envman_secret_args: --module or --script is needed", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
