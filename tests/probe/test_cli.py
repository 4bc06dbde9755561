from __future__ import annotations

import subprocess
import sys


def test_cli_names_the_closest_family() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "envman", "probe", "gema3", "--engine", "vllm"], capture_output=True, text=True
    )
    assert done.returncode == 2
    assert "error: unknown family 'gema3'" in done.stderr
    assert "hint: Did you mean gemma3" in done.stderr
