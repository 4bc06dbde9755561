"""The typer application, the shared options and the one error handler."""

from __future__ import annotations

import signal
import sys
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


def _register() -> None:
    # Each verb module adds its command to `app` when imported.
    from envman.cli import (  # noqa: F401
        build,
        ci,
        diagnose,
        dockerfile,
        doctor,
        envs,
        k8s,
        lock,
        matrix,
        models,
        plan,
        probe,
        servers,
        smoke,
        up,
        verify,
    )


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
    _register()
    try:
        args = sys.argv[1:]
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
