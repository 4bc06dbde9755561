"""Xinference's built-in LLMs, read from its wheel, and whether a plan's model is one of them.

A built-in model is launched by its name (``model_name``, ``model_size_in_billions``,
``model_format``, ``quantization``) with ``model_path`` pointing at the local weights, so
Xinference uses its own chat template, stop tokens and abilities for it instead of a custom
registration; every release accepts ``model_path`` in ``POST /v1/models`` and skips its download
then (``create_llm_model_instance``: ``if not model_path: … cache()``; the llama.cpp model takes
a file path as it is). Where the registry lives in the wheel:

- 1.x: ``xinference/model/llm/llm_family.json``, one list of v1 families whose specs carry
  ``model_id`` and ``quantizations`` (the Hugging Face hub; other hubs have files of their own);
- 4.x: ``xinference/model/llm/models/*.json``, one file per family, v2 specs with ``model_src``
  per hub (``huggingface: {model_id, quantizations}``).

A model matches a built-in when one of its hub repos is a built-in spec's Hugging Face
``model_id`` (``google/gemma-3-1b-it``), else when its name is a built-in's name (catalog names
follow the hub's); the spec launched is the one of the planned format, size and quantization.
The wheel is downloaded once into ``$ENVMAN_HOME/artifacts/xinference`` (sha256-checked) and
the registry read from it is kept beside it.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from envman import paths, pypi
from envman.errors import ConfigError, EnvmanError, TargetError
from envman.files import atomic_write
from envman.frontends.xinference import MODEL_FORMATS
from envman.plan.result import Plan
from envman.report import Reporter

V1_MEMBER = "xinference/model/llm/llm_family.json"
V2_FOLDER = "xinference/model/llm/models/"
CACHE_FORMAT = 1  # of the registry kept beside the wheel


@dataclass(frozen=True)
class BuiltinSpec:
    format: str  # Xinference's: ggufv2, pytorch, awq, gptq, mlx …
    size: int | str  # model_size_in_billions as Xinference spells it (1, "1_5", "0_5")
    quantizations: tuple[str, ...]
    model_id: str | None  # on the Hugging Face hub; may hold "{quantization}"


@dataclass(frozen=True)
class Builtin:
    name: str
    abilities: tuple[str, ...]
    specs: tuple[BuiltinSpec, ...]
    member: str  # the wheel member it was read from


@dataclass(frozen=True)
class Registry:
    version: str
    wheel: str  # file name of the wheel it was read from
    builtins: tuple[Builtin, ...]

    def get(self, name: str) -> Builtin | None:
        return next((b for b in self.builtins if b.name == name), None)


@dataclass(frozen=True)
class ModelChoice:
    """How Xinference will know the model: a built-in launched with local weights, or a custom one."""

    kind: str  # "builtin" | "custom"
    name: str  # the built-in's model_name, or the model's own name
    reason: str
    format: str | None = None
    size: int | str | None = None
    quantization: str | None = None
    model_id: str | None = None
    evidence: str = ""  # wheel and member of the built-in

    @property
    def builtin(self) -> bool:
        return self.kind == "builtin"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "name": self.name,
            "format": self.format,
            "size_in_billions": self.size,
            "quantization": self.quantization,
            "model_id": self.model_id,
            "reason": self.reason,
            "evidence": self.evidence,
        }


# -- reading the wheel ------------------------------------------------------------------


def _hf_spec(spec: Mapping[str, Any]) -> BuiltinSpec | None:
    source = spec.get("model_src", {}).get("huggingface") if "model_src" in spec else spec
    if not isinstance(source, Mapping) or spec.get("model_hub", "huggingface") != "huggingface":
        return None
    quantizations = source.get("quantizations") or ([source["quantization"]] if source.get("quantization") else [])
    return BuiltinSpec(
        format=str(spec["model_format"]),
        size=spec["model_size_in_billions"],
        quantizations=tuple(str(q) for q in quantizations),
        model_id=source.get("model_id"),
    )


def _families(data: Any, member: str) -> Iterable[Builtin]:
    for family in data if isinstance(data, list) else [data]:
        specs = tuple(s for s in (_hf_spec(spec) for spec in family.get("model_specs", [])) if s is not None)
        yield Builtin(str(family["model_name"]), tuple(family.get("model_ability", ())), specs, member)


def read_registry(wheel: Path, version: str) -> Registry:
    """The built-in LLMs of the xinference wheel at ``wheel``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            members = sorted(n for n in names if n.startswith(V2_FOLDER) and n.endswith(".json"))
            if not members and V1_MEMBER in names:
                members = [V1_MEMBER]
            if not members:
                raise ConfigError(f"{wheel.name} has neither {V1_MEMBER} nor {V2_FOLDER}*.json")
            found: list[Builtin] = []
            for member in members:
                found += _families(json.loads(archive.read(member)), member)
    except (OSError, zipfile.BadZipFile, ValueError, KeyError, TypeError) as error:
        raise TargetError(f"cannot read Xinference's built-in models from {wheel.name}: {error}") from None
    return Registry(version, wheel.name, tuple(found))


def _registry_json(registry: Registry) -> str:
    return json.dumps({"format": CACHE_FORMAT, **asdict(registry)}, sort_keys=True)


def _from_json(data: Mapping[str, Any]) -> Registry:
    builtins = tuple(
        Builtin(b["name"], tuple(b["abilities"]), tuple(BuiltinSpec(**{**s, "quantizations": tuple(s["quantizations"])})
                                                        for s in b["specs"]), b["member"])
        for b in data["builtins"]
    )  # fmt: skip
    return Registry(data["version"], data["wheel"], builtins)


def registry(version: str, reporter: Reporter | None = None) -> Registry:
    """The built-in LLMs of Xinference ``version`` (its wheel from PyPI, once; then the cached registry)."""
    directory = paths.artifacts_dir() / "xinference"
    wheel_name = f"xinference-{version}-py3-none-any.whl"
    cached = directory / f"{wheel_name}.builtins.json"
    try:
        data = json.loads(cached.read_text(encoding="utf-8"))
        if data.get("format") == CACHE_FORMAT:
            return _from_json(data)
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not there, or unreadable: read the wheel again
    release = next((r for r in pypi.releases("xinference") if str(r.version) == version), None)
    file = next((f for f in release.files if f.filename == wheel_name), None) if release else None
    if file is None:
        raise TargetError(f"PyPI has no {wheel_name}")
    found = read_registry(pypi.download(file, directory, reporter), version)
    atomic_write(cached, _registry_json(found))
    return found


# -- matching a plan ---------------------------------------------------------------------


def _id_pattern(model_id: str) -> re.Pattern[str]:
    return re.compile(re.escape(model_id.lower()).replace(re.escape("{quantization}"), ".+") + r"\Z")


def _repos(plan: Plan) -> set[str]:
    repos = {a.repo.lower() for a in plan.model.artifacts if a.repo and not a.local_only}
    if plan.artifact.repo and not plan.artifact.local_only:
        repos.add(plan.artifact.repo.lower())
    return repos


def _find(reg: Registry, plan: Plan) -> tuple[Builtin, int | str | None, str] | None:
    """The built-in family the plan's model is, the size it has there (None: unknown), and why."""
    repos = _repos(plan)
    for builtin in reg.builtins:
        for spec in builtin.specs:
            if spec.model_id and any(_id_pattern(spec.model_id).match(r) for r in repos):
                return builtin, spec.size, f"its hub repo {spec.model_id} is a {spec.format} spec of the built-in"
    named = reg.get(plan.model.name)
    if named is not None:
        return named, None, f"its name is the built-in {named.name!r}"
    return None


def _size_b(size: int | str) -> float:
    return float(str(size).replace("_", "."))


def choose(plan: Plan, reg: Registry | None, unread: str = "") -> ModelChoice:
    """``plan``'s model as a built-in of ``reg`` (the spec of the planned format, size, quantization), else custom."""
    name = plan.model.name
    if reg is None:
        return ModelChoice("custom", name, f"a custom model: {unread or 'no built-in registry'}")
    found = _find(reg, plan)
    if found is None:
        return ModelChoice("custom", name, f"a custom model: no built-in of Xinference {reg.version} is {name}")
    builtin, size, why = found
    fmt = MODEL_FORMATS.get(plan.artifact.format.value)
    quantization = plan.artifact.quantization or ("none" if fmt != "ggufv2" else None)
    specs = [s for s in builtin.specs if s.format == fmt and (size is None or s.size == size)]
    if size is None and specs:  # matched by name: the size nearest the model's
        nearest = min(specs, key=lambda s: abs(_size_b(s.size) - plan.model.params_b)).size
        specs = [s for s in specs if s.size == nearest]
    spelled = next(
        (q for s in specs for q in s.quantizations if quantization and q.lower() == quantization.lower()), None
    )
    spec = next((s for s in specs if spelled in s.quantizations), None)
    evidence = f"{reg.wheel}: {builtin.member}"
    if "chat" not in builtin.abilities:
        return ModelChoice("custom", name, f"a custom model: the built-in {builtin.name} has no chat ability",
                           evidence=evidence)  # fmt: skip
    if spec is None or spelled is None:
        offered = sorted({f"{s.format} {s.size}B" for s in builtin.specs})
        return ModelChoice(
            "custom", name,
            f"a custom model: {why}, but it has no {fmt} spec with quantization {quantization} "
            f"(it offers {', '.join(offered) or 'none'})",
            evidence=evidence,
        )  # fmt: skip
    return ModelChoice(
        "builtin", builtin.name, f"the built-in {builtin.name}: {why}", format=spec.format, size=spec.size,
        quantization=spelled, model_id=spec.model_id, evidence=evidence,
    )  # fmt: skip


def model_choice(plan: Plan, reporter: Reporter | None = None) -> ModelChoice:
    """The choice for ``plan`` under its Xinference release; a model with no hub repo and no catalog
    name (smoke models, local files) is custom without reading the registry."""
    assert plan.frontend is not None
    if plan.model.smoke:
        return ModelChoice("custom", plan.model.name, "a custom model: envman's smoke model is no built-in")
    try:
        reg = registry(str(plan.frontend.version), reporter)
    except EnvmanError as error:
        return choose(plan, None, f"the built-in registry could not be read ({error.message})")
    return choose(plan, reg)
