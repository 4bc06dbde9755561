"""API keys never reach an engine's argv (visible to every local user in `ps`): one test per adapter,
and the launcher that hands the key to servers that take it only as an option."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from envman.engines.base import SECRET_KEY_VARIABLE, LaunchSpec, adapter_for
from envman.errors import UsageError
from envman.matrix.schema import Accelerator
from envman.run.server import LAUNCHERS

KEY = "sk-test-" + "0123456789abcdef"


def spec(accelerator: Accelerator = Accelerator.CUDA, api_key: str | None = KEY) -> LaunchSpec:
    return LaunchSpec(
        model_path="/models/m", served_model_name="m", host="127.0.0.1", port=8000, accelerator=accelerator,
        dtype="bfloat16", tensor_parallel_size=1, max_model_len=4096, memory_utilization=0.9,
        max_num_batched_tokens=2048, kv_cache_gib=1.0, api_key=api_key,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("engine", "variable"),
    [("vllm", "VLLM_API_KEY"), ("xllamacpp", SECRET_KEY_VARIABLE), ("sglang", SECRET_KEY_VARIABLE),
     ("lmdeploy", SECRET_KEY_VARIABLE)],
)  # fmt: skip
def test_the_key_travels_in_the_environment_never_argv(engine: str, variable: str) -> None:
    launch = adapter_for(engine).launch(spec())
    assert not any(KEY in arg for arg in launch.argv)
    assert launch.env[variable] == KEY
    assert variable in launch.secret_env
    assert launch.shown_env()[variable] == "***"


@pytest.mark.parametrize(("engine", "flag"), [("sglang", "--api-key"), ("lmdeploy", "--api-keys")])
def test_option_only_servers_go_through_the_secret_args_launcher(engine: str, flag: str) -> None:
    keyed = adapter_for(engine).launch(spec())
    assert keyed.argv[:3] == ("python", "-m", "envman_secret_args")
    assert keyed.argv[keyed.argv.index("--flag") + 1] == flag
    plain = adapter_for(engine).launch(spec(api_key=None))
    assert "envman_secret_args" not in plain.argv
    assert SECRET_KEY_VARIABLE not in plain.env


@pytest.mark.parametrize("engine", ["transformers", "mlx-lm"])
def test_servers_without_authentication_refuse_a_key(engine: str) -> None:
    from envman.engines.base import refuse_key

    adapter = adapter_for(engine)
    assert getattr(adapter, "checks_api_key", True) is False
    with pytest.raises(UsageError, match="cannot check an API key"):
        refuse_key(engine, spec(Accelerator.CPU))


def test_the_launcher_hands_the_key_in_process_and_not_on_the_command_line(tmp_path: Path) -> None:
    """A stand-in server module: what it sees in sys.argv, and what /proc says its command line is."""
    module = tmp_path / "fake_server.py"
    module.write_text(
        "import os, sys\n"
        "print('argv', sys.argv[1:])\n"
        "print('cmdline', open(f'/proc/{os.getpid()}/cmdline', 'rb').read().replace(b'\\0', b' ').decode())\n"
        f"print('env', {SECRET_KEY_VARIABLE!r} in os.environ)\n"
    )
    env = {**os.environ, SECRET_KEY_VARIABLE: KEY, "PYTHONPATH": os.pathsep.join([str(LAUNCHERS), str(tmp_path)])}
    argv = [sys.executable, "-m", "envman_secret_args", "--flag", "--api-key", "--module", "fake_server", "--",
            "--port", "1"]  # fmt: skip
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30, check=True)
    lines = dict(line.split(" ", 1) for line in done.stdout.splitlines())
    assert lines["argv"] == repr(["--port", "1", "--api-key", KEY])  # the server got its key
    assert KEY not in lines["cmdline"]  # and no other user can read it from /proc
    assert lines["env"] == "False"  # nor does a child process inherit it
