"""Cold image build vs. rebuild after a launch-flag change (the dependency layer is reused).

    python bench/docker_build.py [--engine xllamacpp --version 2026.10.11549 --variant cpu]
        [--base-image envman-test/python:3.11-slim-bookworm] [--extra-ca /etc/ssl/certs/ca-certificates.crt]

Needs a Docker daemon (scripts/ci-docker-setup) and PyPI from inside the build. The cold
build runs with the daemon's cache off (--no-cache); the rebuild renders the same Dockerfile
with one more server argument and uses the cache. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from packaging.version import Version

from envman.docker import dockerfile as df
from envman.docker import image
from envman.lock.locks import lockfiles_dir
from envman.matrix.combinations import Combination
from envman.paths import default_matrix


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engine", default="xllamacpp")
    parser.add_argument("--version", default="2026.10.11549")
    parser.add_argument("--variant", default="cpu")
    parser.add_argument("--base-image", default="envman-test/python:3.11-slim-bookworm")
    parser.add_argument("--extra-ca", type=Path, default=Path("/etc/ssl/certs/ca-certificates.crt"))
    parser.add_argument("--flag", nargs=2, default=["--n-gpu-layers", "0"], help="the server argument added")
    args = parser.parse_args()

    matrix = df.public_matrix(default_matrix())
    combination = Combination(args.engine, Version(args.version), args.variant)
    started = time.monotonic()
    cold = image.build_image(
        matrix, args.engine, args.version, args.variant,
        base_image=args.base_image, extra_ca=args.extra_ca, nocache=True,
    )  # fmt: skip
    cold_s = time.monotonic() - started
    lock_dir = lockfiles_dir(matrix)
    target = df.target_for(matrix, combination, lock_dir=lock_dir, extra_args=tuple(args.flag))
    started = time.monotonic()
    warm = image.build_context_image(
        df.render(target), target, lock_dir,
        tag=f"{cold.tag}-bench-flag", base_image=args.base_image, extra_ca=args.extra_ca,
    )  # fmt: skip
    warm_s = time.monotonic() - started
    sync = warm.step_running("uv pip sync")
    print(
        json.dumps(
            {
                "combination": str(combination),
                "cold_build_s": round(cold_s, 1),
                "rebuild_after_flag_change_s": round(warm_s, 1),
                "ratio": round(cold_s / warm_s, 1),
                "dependency_step": sync,
                "dependency_layer_reused": sync in warm.cached_steps
                and warm.step_images.get(sync) == cold.step_images.get(sync),
                "cached_steps": list(warm.cached_steps),
                "steps": warm.steps,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
