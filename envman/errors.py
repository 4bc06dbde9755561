"""The one exception hierarchy. The CLI maps each class to an exit status.

Exit codes: 0 ok, 1 a target failed, 2 usage or configuration error,
3 a prerequisite is missing, 130 interrupted.
"""

from __future__ import annotations


class EnvmanError(Exception):
    """Root of every error envman reports to a user."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(EnvmanError):
    """The user asked for something that cannot be (bad option, unknown model)."""

    exit_code = 2


class ConfigError(EnvmanError):
    """A configuration file (matrix.toml, config.toml) is malformed."""

    exit_code = 2

    def __init__(self, message: str, problems: list[str] | None = None, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.problems = problems or []


class TargetError(EnvmanError):
    """A target failed: nothing satisfies a plan, a build or a launch failed."""

    exit_code = 1


class PrerequisiteError(EnvmanError):
    """Something envman needs is missing on this host (docker daemon, uv, GPU)."""

    exit_code = 3


class Terminated(KeyboardInterrupt):
    """envman was asked to stop (SIGTERM, SIGHUP): unwinds like Ctrl-C, exits 128 + the signal."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum

    @property
    def signal_name(self) -> str:
        import signal

        try:
            return signal.Signals(self.signum).name
        except ValueError:
            return f"signal {self.signum}"
