"""What the planner decides: one combination, with its reasons and rejections.

A plan is a decision only: it holds no weights path, bind address, port or key. The launch
step (:mod:`envman.engines.launch`) turns a plan plus those bindings into argv and env.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix.schema import Artifact, Model, MultiNode, Variant
from envman.plan.memory import MemoryEstimate


@dataclass(frozen=True)
class Rejection:
    engine: str
    version: str | None
    variant: str | None
    format: str | None
    reason: str
    soft: bool = False  # --force may override it (floor, known-bad, memory)

    def to_json(self) -> dict[str, Any]:
        return {
            "engine": self.engine,
            "version": self.version,
            "variant": self.variant,
            "format": self.format,
            "reason": self.reason,
        }


@dataclass(frozen=True)
class FrontendPlan:
    """The serving layer a plan runs under, and how it drives the chosen engine."""

    name: str
    version: Version
    package: str
    command: str  # its server's console script
    model_engine: str  # its name for the engine
    spec_version: int  # the model-spec document it registers
    env: Mapping[str, str]  # the flags the matrix holds for this frontend × engine pair
    requirements: tuple[str, ...]  # packages locked beside the frontend and the engine
    variant: str  # the frontend's install variant (its sources)

    @property
    def key(self) -> str:
        """How the combination names it: ``xinference==1.4.0``."""
        return f"{self.name}=={self.version}"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": str(self.version),
            "model_engine": self.model_engine,
            "spec_version": self.spec_version,
            "env": dict(self.env),
            "requirements": list(self.requirements),
        }


@dataclass(frozen=True)
class Plan:
    model: Model
    engine: str
    engine_version: Version
    variant: Variant
    artifact: Artifact
    dtype: str | None
    tensor_parallel_size: int
    max_model_len: int
    memory_utilization: float
    memory: MemoryEstimate
    host: Host
    max_num_batched_tokens: int
    requires: Mapping[str, Any] = field(default_factory=dict)  # what the build needs from the host stack
    trust_remote_code: bool = False
    engine_args: tuple[str, ...] = ()  # from the matrix's rules for this version and format, and the family's
    engine_env: Mapping[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    rejected: tuple[Rejection, ...] = ()
    integrations: tuple[dict[str, Any], ...] = ()
    forced: tuple[str, ...] = field(default=())  # reasons --force overrode
    # Over several nodes: tensor parallel inside each, pipeline or data parallel across them.
    nodes: int = 1
    pipeline_parallel_size: int = 1
    data_parallel_size: int = 1
    expert_parallel: bool = False
    multinode: MultiNode | None = None  # the release's mechanism (None: one node)

    frontend: FrontendPlan | None = None  # --frontend: the serving layer over the engine

    @property
    def family(self) -> str:
        return self.model.family

    def to_json(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "family": self.family,
            "engine": self.engine,
            "engine_version": str(self.engine_version),
            "variant": self.variant.name,
            "package": self.variant.package,
            "format": self.artifact.format.value,
            "quantization": self.artifact.quantization,
            "dtype": self.dtype,
            "nodes": self.nodes,
            "tensor_parallel_size": self.tensor_parallel_size,
            "pipeline_parallel_size": self.pipeline_parallel_size,
            "data_parallel_size": self.data_parallel_size,
            "expert_parallel": self.expert_parallel,
            "multinode": None
            if self.multinode is None
            else {
                "mechanism": self.multinode.mechanism.value,
                "across": self.multinode.across.value,
                "evidence": self.multinode.evidence,
            },
            "max_model_len": self.max_model_len,
            "memory_utilization": self.memory_utilization,
            "weights": {
                "repo": self.artifact.repo,
                "file": self.artifact.file,
                "quant_method": self.artifact.quant_method,
                "local_only": self.artifact.local_only,
            },
            "hardware": self.host.source if self.host.source != "detected" else "detected: " + self.host.describe(),
            "memory": self.memory.to_json(),
            "requires": dict(self.requires),
            "engine_args": list(self.engine_args),
            "engine_env": dict(self.engine_env),
            "notes": list(self.notes),
            "warnings": list(self.warnings),
            "forced": list(self.forced),
            "integrations": list(self.integrations),
            "rejected": [r.to_json() for r in self.rejected],
            "frontend": self.frontend.to_json() if self.frontend else None,
        }
