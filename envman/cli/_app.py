"""The typer application, the shared options and the one error handler."""

from __future__ import annotations

import importlib
import pkgutil
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any

import typer

from envman import __version__
from envman.errors import ConfigError, EnvmanError, Terminated

app = typer.Typer(
    name="envman",
    help="Reproducible engine environments for LLM inference: plan, lock, build, smoke, serve.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, Any] = {"verbose": False, "passthrough": None, "terminated": None}


def verbose() -> bool:
    return bool(_state["verbose"])


def passthrough() -> list[str] | None:
    """The arguments after ``--`` (for the engine, with `envman up`), or None if there was no ``--``."""
    value = _state["passthrough"]
    return None if value is None else list(value)


def _version(value: bool) -> None:
    if value:
        print(f"envman {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show details and tracebacks.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    _state["verbose"] = verbose


def verb_modules() -> list[str]:
    """The modules of envman.cli that hold commands: every one not named with a leading ``_``."""
    here = str(Path(__file__).parent)
    return sorted(m.name for m in pkgutil.iter_modules([here]) if not m.name.startswith("_"))


def _register(args: Sequence[str] = ()) -> None:
    """Import verb modules; each adds its command(s) to `app` when imported.

    A verb lives in the module named after it (``envman build`` in ``cli/build.py``), so
    running one imports only that module and what it uses. No verb (``--help``), or one that
    lives elsewhere or does not exist (``ps`` is in ``up.py``), imports them all, so the app
    lists, finds or suggests every command.
    """
    modules = verb_modules()
    verb = next((a for a in args if not a.startswith("-")), None)  # the root options take no value
    for module in [verb] if verb in modules else modules:
        importlib.import_module(f"envman.cli.{module}")


def report_error(error: EnvmanError) -> int:
    """Print a user error (no traceback unless -v) and return its exit code."""
    from rich.markup import escape

    from envman.cli._console import err

    err.print(f"[bold red]error:[/] {escape(error.message)}", highlight=False)
    if isinstance(error, ConfigError):
        for problem in error.problems:
            err.print(f"  {problem}", highlight=False, markup=False)
    if error.hint:
        err.print(f"[yellow]hint:[/] {escape(error.hint)}", highlight=False)
    if verbose():
        import traceback

        traceback.print_exception(error, file=sys.stderr)
    return error.exit_code


def _click_exceptions() -> Any:
    try:
        from typer._click import exceptions
    except ImportError:  # typer < 0.29 uses click itself
        from click import exceptions  # type: ignore[no-redef,import-not-found,unused-ignore]
    return exceptions


def _terminate(signum: int, frame: object) -> None:
    _state["terminated"] = signum  # typer reports any KeyboardInterrupt as 130: remember which signal it was
    raise Terminated(signum)


def main() -> None:
    # SIGTERM (systemd, Docker, Kubernetes, kill) and SIGHUP (terminal closed) unwind like
    # Ctrl-C: every `finally` runs, so servers envman started are stopped before it exits.
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, _terminate)
    args = sys.argv[1:]
    _register(args)
    try:
        if "--" in args:  # everything after it is the engine's, untouched by option parsing
            cut = args.index("--")
            args, _state["passthrough"] = args[:cut], args[cut + 1 :]
        # standalone_mode=False returns typer.Exit's code instead of exiting
        code = app(args=args, standalone_mode=False)
    except EnvmanError as error:
        sys.exit(report_error(error))
    except Terminated as stop:
        sys.exit(128 + stop.signum)
    except KeyboardInterrupt:
        sys.exit(130)
    except typer.Exit as exit_:
        sys.exit(_exit_code(exit_.exit_code))
    except typer.Abort:
        sys.exit(_exit_code(130))
    except Exception as error:  # click's usage errors (typer >= 0.29 vendors click as typer._click)
        exceptions = _click_exceptions()
        if isinstance(error, exceptions.ClickException):
            error.show()
            sys.exit(2 if isinstance(error, exceptions.UsageError) else error.exit_code)
        raise
    sys.exit(_exit_code(code if isinstance(code, int) else 0))


def _exit_code(code: int) -> int:
    """128 + N after SIGTERM or SIGHUP (typer has turned the interrupt into 130)."""
    signum = _state.get("terminated")
    return 128 + signum if signum and code == 130 else code
