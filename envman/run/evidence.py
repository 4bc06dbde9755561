"""The record a smoke run leaves: what ran, where, how long it took, what it answered.

One JSON file per run, under
``$ENVMAN_HOME/evidence/<engine>/<version>-<variant>/<model>-<timestamp>.json``; a passed
record is the proof that a combination works on that hardware, a failed one carries the
diagnosis and the log's tail.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from envman import __version__, paths
from envman.build.environments import Environment
from envman.engines.base import Launch
from envman.files import atomic_write
from envman.hardware.host import Host
from envman.plan.result import Plan

SCHEMA = 1


def evidence_dir() -> Path:
    return paths.home() / "evidence"


@dataclass(frozen=True)
class Timings:
    build: float | None = None  # creating or reusing the environment
    start_to_ready: float | None = None
    request: float | None = None
    total: float | None = None

    def to_json(self) -> dict[str, float | None]:
        return {
            "build_s": _round(self.build),
            "start_to_ready_s": _round(self.start_to_ready),
            "request_s": _round(self.request),
            "total_s": _round(self.total),
        }


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def combination(plan: Plan) -> dict[str, Any]:
    return {
        "model": plan.model.name,
        "family": plan.family,
        "engine": plan.engine,
        "engine_version": str(plan.engine_version),
        "variant": plan.variant.name,
        "package": plan.variant.package,
        "format": plan.artifact.format.value,
        "quantization": plan.artifact.quantization,
        "dtype": plan.dtype,
        **({"frontend": plan.frontend.to_json()} if plan.frontend else {}),
    }


def hardware(host: Host) -> dict[str, Any]:
    return {
        "description": host.describe(),
        "os": host.os,
        "arch": host.arch,
        "glibc": host.glibc,
        "cpu": {"model": host.cpu.model, "cores": host.cpu.cores, "memory_bytes": host.cpu.memory_total_bytes},
        "gpus": [
            {"name": g.name, "compute_capability": str(g.compute_capability), "memory_bytes": g.memory_total_bytes}
            for g in host.gpus
        ],
        "driver_version": host.driver_version,
        "cuda_driver_version": host.cuda_driver_version,
    }


def environment(env: Environment) -> dict[str, Any]:
    return {
        "id": env.id,
        "fingerprint": env.fingerprint,
        "python": env.python,
        "lockfile": env.lockfile,
        "lock_digest": env.lock_digest,
    }


def record(
    *,
    plan: Plan,
    launch: Launch,
    argv: list[str],
    environment: dict[str, Any],
    lock: dict[str, Any],
    passed: bool,
    timings: Timings,
    weights: str,
    answer: dict[str, Any] | None,
    diagnosis: str | None,
    findings: list[dict[str, Any]],
    error: str | None,
    log_path: Path,
    log_tail: str | None,
    when: dt.datetime,
) -> dict[str, Any]:
    """The evidence document (field order is the contract). Secrets are masked, never recorded."""
    return {
        "schema": SCHEMA,
        "result": "passed" if passed else "failed",
        "timestamp": when.isoformat(timespec="seconds"),
        "envman_version": __version__,
        "combination": combination(plan),
        "lock": lock,
        "environment": environment,
        "hardware": hardware(plan.host),
        "server": {
            "command": argv,
            "env": launch.shown_env(),
            "served_model_name": launch.served_model_name,
            "max_model_len": plan.max_model_len,
            "weights": weights,
        },
        "timings": timings.to_json(),
        "answer": answer,
        "diagnosis": diagnosis,
        "findings": findings,
        "error": error,
        "log": str(log_path),
        "log_tail": log_tail,
    }


def path_for(plan: Plan, when: dt.datetime) -> Path:
    """A new record's path (``.json``); the server log lies beside it (``.log``)."""
    where = evidence_dir() / plan.engine / f"{plan.engine_version}-{plan.variant.name}"
    stem = f"{plan.model.name}-{when.strftime('%Y%m%dT%H%M%SZ')}"
    path, n = where / f"{stem}.json", 1
    while path.exists() or path.with_suffix(".log").exists():  # two runs within one second
        n += 1
        path = where / f"{stem}-{n}.json"
    return path


def write(document: dict[str, Any], path: Path) -> Path:
    """Write atomically (a temporary file in the same directory, then a rename)."""
    return atomic_write(path, json.dumps(document, indent=2) + "\n")
