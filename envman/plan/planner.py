"""The planner: a model and a host in, one engine combination out, with reasons.

Every engine is examined, in the matrix's preference order for the host's
accelerator: its variants (OS, CPU architecture, compute capability), its version
(the floor, known-good pins, known-bad ranges), the model's artifacts (formats and
quantization methods it loads), the dtype the GPU supports, and memory (weights + KV
cache for the context at the utilisation share) giving the smallest tensor-parallel
size that fits. The first viable engine wins; every other one is reported with why.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from packaging.version import InvalidVersion, Version

from envman.errors import TargetError, UsageError
from envman.hardware.host import Host
from envman.matrix.catalog import check_engine, resolve_model
from envman.matrix.schema import (
    Accelerator,
    Artifact,
    Drive,
    Engine,
    Format,
    Matrix,
    Model,
    Support,
    Variant,
)
from envman.plan import frontend as frontends
from envman.plan.dtype import choose_dtype, float16_refusal
from envman.plan.fit import TP_SIZES, Fit, fit
from envman.plan.quant import plugin_note, quant_method_gate
from envman.plan.request import PlanRequest, parse_format
from envman.plan.requirements import NONE, declared_requirements, newest_runnable, requirements_for
from envman.plan.requirements import check as check_host
from envman.plan.result import Plan, Rejection
from envman.plan.versions import candidate_versions, usable_variants


def _matches(artifact: Artifact, fmt: Format, quant: str | None) -> bool:
    if artifact.format is not fmt:
        return False
    return quant is None or (artifact.quantization or "").lower() == quant.lower()


@dataclass
class _Candidate:
    """A viable (or, under --force, softly blocked) combination of one engine."""

    plan: Plan
    soft_reasons: list[str] = field(default_factory=list)


class Planner:
    def __init__(self, matrix: Matrix, host: Host) -> None:
        self.matrix = matrix
        self.host = host

    # -- the entry point ---------------------------------------------------------

    def plan(self, request: PlanRequest) -> Plan:
        if isinstance(request.model, Model):
            model, repo = request.model, request.weights_repo
        else:
            model, repo = resolve_model(self.matrix, request.model)
        self._repo = repo
        self._version_notes: dict[tuple[str, Version], str] = {}
        self._frontend = frontends.choose(self.matrix, request.frontend) if request.frontend else None
        if request.engine:
            check_engine(self.matrix, request.engine)
        if request.version:
            if not request.engine:
                raise UsageError("--version needs --engine", hint="e.g. --engine vllm --version 0.8.5")
            try:
                Version(request.version)
            except InvalidVersion:
                raise UsageError(f"{request.version!r} is not a version", hint="e.g. --version 0.8.5") from None
        fmt, quant = parse_format(request.format)
        if fmt is not None and not any(_matches(a, fmt, quant) for a in model.artifacts):
            offered = ", ".join(a.label for a in model.artifacts)
            raise UsageError(f"{model.name} has no {request.format} weights", hint=f"it comes as: {offered}")
        if request.max_model_len is not None and request.max_model_len > model.max_context:
            raise UsageError(
                f"--max-model-len {request.max_model_len} exceeds {model.name}'s maximum context {model.max_context}",
                hint=f"use --max-model-len {model.max_context} or less",
            )
        if request.memory_utilization is not None and not 0.05 <= request.memory_utilization <= 1.0:
            raise UsageError("--gpu-memory-utilization must be between 0.05 and 1.0")
        tp = request.tensor_parallel_size
        if tp is not None:
            if model.attention_heads % tp:
                raise UsageError(
                    f"--tensor-parallel-size {tp} does not divide the {model.attention_heads} attention heads "
                    f"of {model.name}",
                    hint="use a divisor of the head count: "
                    + ", ".join(str(n) for n in TP_SIZES if model.attention_heads % n == 0),
                )
            if self.host.accelerator is Accelerator.CUDA and tp > len(self.host.gpus):
                raise UsageError(
                    f"--tensor-parallel-size {tp} needs {tp} GPUs; the target has {len(self.host.gpus)}",
                    hint="name a bigger target with --hardware, e.g. --hardware H100x" + str(tp),
                )

        self._check_nodes(request)
        rejected: list[Rejection] = []
        viable: list[_Candidate] = []
        forced: list[_Candidate] = []
        for engine in self._engine_order():
            if request.engine and engine.name != request.engine:
                continue
            found = self._examine_engine(engine, model, request, rejected)
            if found is None:
                continue
            (viable if not found.soft_reasons else forced).append(found)

        if viable:
            chosen = viable[0]
        elif request.force and forced:
            chosen = forced[0]
        else:
            raise self._no_plan(model, request, rejected, forced)
        for other in viable:  # forced candidates that lost are already among the rejections
            if other is chosen:
                continue
            p = other.plan
            why = (
                f"also viable ({p.artifact.label}, {p.engine} {p.engine_version} {p.variant.name}) "
                f"but {chosen.plan.engine} comes first for {self.host.accelerator.value} hosts"
            )
            rejected.append(Rejection(p.engine, str(p.engine_version), p.variant.name, p.artifact.label, why))
        if chosen.soft_reasons:  # the forced choice is reported under `forced`, not as rejected
            c = chosen.plan
            key = (c.engine, str(c.engine_version), c.variant.name, c.artifact.label)
            rejected = [r for r in rejected if not (r.soft and (r.engine, r.version, r.variant, r.format) == key)]
        order = {name: i for i, name in enumerate(self.matrix.engines)}
        # artifacts that differ only by repo (DeepSeek-V3 and -R1 fp8) are refused in the same words: once
        rejected = sorted(dict.fromkeys(rejected), key=lambda r: order.get(r.engine, 99))
        plan = chosen.plan
        return Plan(**{**plan.__dict__, "rejected": tuple(rejected), "forced": tuple(chosen.soft_reasons)})

    def _check_nodes(self, request: PlanRequest) -> None:
        nodes = request.nodes
        if nodes is None or nodes == 1:
            return
        if nodes < 1:
            raise UsageError(f"--nodes {nodes} must be 1 or more")
        if request.local_nodes:
            if self.host.accelerator is not Accelerator.CPU:
                raise UsageError(
                    f"--local-nodes runs all {nodes} ranks on this machine's CPU; the target is {self.host.describe()}",
                    hint="add --hardware cpu (the engine's CPU build), or run each node's command from --dry-run "
                    "on its own machine",
                )
            return
        if self.host.accelerator is not Accelerator.CUDA:
            raise UsageError(
                f"--nodes {nodes} needs GPU nodes; the target is {self.host.describe()}",
                hint="name the GPUs of one node, e.g. --hardware H100x8 --nodes 2",
            )
        tp = request.tensor_parallel_size
        if tp is not None and tp > len(self.host.gpus):
            raise UsageError(
                f"--tensor-parallel-size {tp} is more than the {len(self.host.gpus)} GPUs of one node",
                hint="with --nodes, --tensor-parallel-size is the split inside each node",
            )

    # -- engines, variants, versions ----------------------------------------------

    def _engine_order(self) -> list[Engine]:
        preferred = self.matrix.planner.preference.get(self.host.accelerator, ())
        names = list(preferred) + [n for n in self.matrix.engines if n not in preferred]
        return [self.matrix.engines[n] for n in names]

    def _examine_engine(
        self, engine: Engine, model: Model, request: PlanRequest, rejected: list[Rejection]
    ) -> _Candidate | None:
        def reject(reason: str, version: str | None = None, variant: str | None = None, fmt: str | None = None) -> None:
            rejected.append(Rejection(engine.name, version, variant, fmt, reason))

        support = self.matrix.support(model.family, engine.name)
        if support is None or (support.min_version is None and not request.force):
            reject(f"{engine.name} has no recorded support for the {model.family} family in matrix.toml")
            return None
        drive = None
        if self._frontend is not None:  # only the engine releases this frontend release can drive
            restricted = frontends.restrict(self._frontend, engine, support)
            if isinstance(restricted, str):
                reject(restricted)
                return None
            engine, support, drive = restricted
        variants = usable_variants(engine, self.host, reject)
        if not variants:
            return None
        soft_candidates: list[tuple[_Candidate, list[str]]] = []
        for variant in variants:
            for version, version_soft in self._runnable(
                engine, support, variant, request, reject,
                candidate_versions(engine, support, variant, request, self.host, reject, self._version_notes),
            ):  # fmt: skip
                if drive is not None and self._frontend is not None:
                    pair = frontends.gate_reasons(self._frontend, drive, engine.name, version, model.family)
                    for reason in pair:
                        rejected.append(Rejection(engine.name, str(version), variant.name, None, reason, soft=True))
                    if pair and not request.force:
                        continue
                    version_soft = version_soft + pair
                found = self._examine_artifacts(engine, support, variant, version, model, request, rejected)
                if found is None:
                    continue
                if drive is not None and self._frontend is not None:
                    found.plan = self._under_frontend(found.plan, drive, variant)
                    if found.plan.frontend is None:
                        reject(f"{self._frontend.frontend.name} has no build for {variant.accelerator.value} hosts")
                        continue
                found.soft_reasons = version_soft + found.soft_reasons
                if not found.soft_reasons:
                    return found
                soft_candidates.append((found, version_soft))
                if request.version:
                    break
        if soft_candidates:
            best, version_soft = soft_candidates[0]
            for reason in version_soft:  # artifact-level reasons were recorded where they arose
                rejected.append(
                    Rejection(
                        engine.name,
                        str(best.plan.engine_version),
                        best.plan.variant.name,
                        best.plan.artifact.label,
                        reason,
                        soft=True,
                    )
                )
            return best
        return None

    def _runnable(
        self,
        engine: Engine,
        support: Support,
        variant: Variant,
        request: PlanRequest,
        reject: Callable[..., None],
        versions: Iterable[tuple[Version, list[str]]],
    ) -> Iterator[tuple[Version, list[str]]]:
        """The candidate versions whose builds this host's driver, GPUs and glibc can run.

        A build the host cannot run (its CUDA runtime needs a newer driver, it has no kernels
        for the GPU, its wheels need a newer glibc: facts read from the released wheels, see
        ``envman probe --host-requirements``) is rejected with the reason and the way out; the
        newest older release that does run here, at or above the family's floor, is tried in
        its place (not yet smoke-tested). ``--force`` keeps the build, as a soft reason.
        """
        tried: set[Version] = set()
        candidates = list(versions)
        # the newest candidate whose own-index build is configured and runs here: an older PyPI
        # release is no way out past it (that build's variant is tried after this one)
        vendor_newest = max((v for v, _ in candidates if self._vendor_build(engine, variant, v)[1]), default=None)
        for version, soft in candidates:
            req = requirements_for(self.matrix, engine.name, str(version), variant.name)
            req = req or declared_requirements(self.matrix, variant)
            reasons = check_host(req, self.host) if req is not None and self.host.gpus else []
            if not reasons:
                if version not in tried:
                    tried.add(version)
                    yield version, soft
                continue
            vendor, configured = self._vendor_build(engine, variant, version)
            if vendor is not None and configured and not request.force:
                # the same release's build from the project's own index runs here: its variant comes next
                reject(f"{'; '.join(reasons)} ({vendor})", str(version), variant.name)
                continue
            reasons = [*reasons, vendor] if vendor is not None else reasons
            way_out = newest_runnable(self.matrix, engine.name, variant.name, self.host, below=version)
            floor = support.min_version
            if vendor_newest is not None and way_out is not None and way_out[0] < vendor_newest:
                vendor, _ = self._vendor_build(engine, variant, vendor_newest)
                reject(f"{'; '.join(reasons)} ({engine.name} {vendor_newest}: {vendor})", str(version), variant.name)
                continue
            if way_out is not None and (floor is None or way_out[0] >= floor) and not request.version:
                older = way_out[0]
                why = "; ".join(reasons)
                reject(
                    f"{why} (the newest release that runs here is {engine.name} {older})", str(version), variant.name
                )
                if older not in tried:
                    tried.add(older)
                    self._version_notes[(engine.name, older)] = (
                        f"{engine.name} {older}: the newest release this host's driver, GPUs and glibc can run "
                        f"({why.split(':')[0]}); not yet smoke-tested"
                    )
                    yield older, soft
                continue
            if request.force:
                yield version, [*soft, *reasons]
                continue
            reject(
                "; ".join(reasons) + self._older_driver_line(engine.name, variant.name, version, floor),
                str(version),
                variant.name,
            )

    # -- artifacts, dtype, memory ---------------------------------------------------

    def _examine_artifacts(
        self,
        engine: Engine,
        support: Support,
        variant: Variant,
        version: Version,
        model: Model,
        request: PlanRequest,
        rejected: list[Rejection],
    ) -> _Candidate | None:
        want_fmt, want_quant = parse_format(request.format)
        prefs = self.matrix.planner.format_preference
        artifacts = sorted(model.artifacts, key=lambda a: prefs.index(a.format) if a.format in prefs else len(prefs))
        soft_fallback: _Candidate | None = None
        unloadable: set[Format] = set()
        for artifact in artifacts:
            if want_fmt is not None and not _matches(artifact, want_fmt, want_quant):
                continue
            if self._repo and artifact.repo != self._repo:
                continue

            def reject(reason: str, soft: bool = False, artifact: Artifact = artifact) -> None:
                rejected.append(Rejection(engine.name, str(version), variant.name, artifact.label, reason, soft))

            if artifact.format not in engine.formats:
                if artifact.format not in unloadable:  # one line per format, not per file
                    unloadable.add(artifact.format)
                    reject(f"{engine.name} does not load {artifact.format.value} weights")
                continue
            if support.formats and artifact.format not in support.formats:
                reject(f"{artifact.format.value} weights of {model.family} are not supported by {engine.name}")
                continue
            methods = engine.quant_methods.get(artifact.format)
            if artifact.quant_method and methods and artifact.quant_method not in methods:
                producer = f" (made by {artifact.producer})" if artifact.producer else ""
                reject(
                    f"{engine.name} does not recognise quant_method {artifact.quant_method!r}{producer}; "
                    f"it loads {', '.join(methods)} for {artifact.format.value}"
                )
                continue
            soft: list[str] = []
            for bad in support.known_bad:
                if bad.applies(version, artifact.format):
                    fixed = f"; fixed in {bad.fixed_in}" if bad.fixed_in else ""
                    soft.append(f"known bad: {bad.reason} (error: {bad.error}){fixed}")
            for reason in soft:
                reject(reason, soft=True)
            if soft and not request.version and not request.force:
                continue  # another known-good version may do
            spec = self.matrix.quant_spec(artifact.format, artifact.quantization)
            host_cc = self.host.min_compute_capability
            method_gate = quant_method_gate(self.matrix, self.host, engine.name, version, artifact, variant)
            if method_gate is not None:
                if method_gate:
                    reject(method_gate)
                    continue
            elif (
                self.host.accelerator is Accelerator.CUDA
                and spec is not None
                and spec.min_compute_capability is not None
                and host_cc is not None
                and host_cc < spec.min_compute_capability
            ):
                reject(
                    f"{artifact.format.value} needs compute capability {spec.min_compute_capability}; "
                    f"{self.host.gpus[0].name} has {host_cc} ({spec.note})"
                )
                continue
            model_types = self.matrix.families[model.family].model_types if model.family in self.matrix.families else ()
            dtype, dtype_notes = choose_dtype(
                self.matrix, self.host, artifact, engine=engine.name, version=version, model_types=model_types
            )
            if dtype == "float16" and artifact.format in (Format.AWQ, Format.GPTQ):
                refused = float16_refusal(self.matrix, engine.name, version, model_types)
                if refused is not None:  # below compute capability 8.0 the 4-bit kernels take float16 only
                    reject(f"{artifact.format.value} weights run in float16 here and {refused}")
                    continue
            fitted = fit(self.matrix, self.host, engine, model, artifact, dtype, request, version=version)
            if isinstance(fitted, str) and dtype == "float32" and self.host.accelerator is Accelerator.CUDA:
                refused = float16_refusal(self.matrix, engine.name, version, model_types)
                fitted = f"{fitted}; in float32 because {refused}" if refused else fitted
            if isinstance(fitted, str):
                soft.append(fitted)
                reject(fitted, soft=True)
                if soft_fallback is None and request.force:
                    forced_fit = fit(
                        self.matrix, self.host, engine, model, artifact, dtype, request, True, version=version
                    )
                    assert not isinstance(forced_fit, str)
                    forced_plan = self._make_plan(
                        engine, support, variant, version, model, artifact, dtype, forced_fit, request
                    )
                    soft_fallback = _Candidate(forced_plan, soft)
                continue
            candidate = self._make_plan(engine, support, variant, version, model, artifact, dtype, fitted, request)
            notes = list(candidate.notes)
            notes[1:1] = dtype_notes
            moved = plugin_note(self.matrix, engine.name, version, artifact, variant)
            if moved:
                notes.append(moved)
            plan = Plan(**{**candidate.__dict__, "notes": tuple(notes)})
            result = _Candidate(plan, soft)
            if not soft:
                return result
            if soft_fallback is None:
                soft_fallback = result
        return soft_fallback

    def _make_plan(
        self,
        engine: Engine,
        support: Support,
        variant: Variant,
        version: Version,
        model: Model,
        artifact: Artifact,
        dtype: str | None,
        fitted: Fit,
        request: PlanRequest,
    ) -> Plan:
        tp, estimate, wanted_context = fitted.tensor_parallel_size, fitted.estimate, fitted.wanted_context
        planner = self.matrix.planner
        env: dict[str, str] = {}
        args: list[str] = []
        notes: list[str] = []
        for rule in engine.rules:
            if rule.applies(version, artifact.format):
                env.update(rule.env)
                args.extend(rule.args)
                notes.append(f"{' '.join(rule.args) or rule.env}: {rule.reason}")
        env.update(support.env)
        args.extend(support.args)
        if version in support.known_good:
            why_version = "known good for " + model.family
        elif request.version:
            why_version = "requested"
        elif version in engine.known_good:
            why_version = "known good for the engine"
        else:
            why_version = "not yet verified"
        notes.insert(0, f"{engine.name} {version} ({why_version}; floor {support.min_version})")
        if estimate.max_model_len < wanted_context:
            notes.append(f"max_model_len {estimate.max_model_len}: reduced from {wanted_context} to fit")
        pending = self._version_notes.get((engine.name, version))
        if pending and version not in support.known_good:
            notes.append(pending)
        warnings: list[str] = []
        if model.trust_remote_code and not request.trust_remote_code:
            warnings.append(
                f"{model.name} ships its own modelling code; review it and pass --trust-remote-code to run it"
            )
        if self.host.accelerator is Accelerator.CUDA:
            utilization = estimate.utilization
        else:
            # vLLM's CPU build reads --gpu-memory-utilization as a share of RAM; ask for what is needed.
            need = estimate.per_device_bytes / max(1, self.host.cpu.memory_total_bytes)
            utilization = round(min(estimate.utilization, max(0.3, need + 0.05)), 2)
        integrations = tuple(
            {"tool": i.tool, "versions": str(i.versions), "env": dict(i.env), "reason": i.reason}
            for i in self.matrix.integrations
            if i.engine == engine.name
        )
        if request.tensor_parallel_size and not engine.tensor_parallel:
            notes.append(
                f"--tensor-parallel-size {request.tensor_parallel_size} does not apply: {engine.name} "
                "splits layers over the GPUs instead"
            )
        elif tp > 1 and not request.tensor_parallel_size and fitted.nodes == 1:
            notes.append(f"tensor_parallel_size {tp}: the smallest split that fits")
        gpu = f"{len(self.host.gpus)}x {self.host.gpus[0].name}" if self.host.gpus else ""
        if (request.nodes or 1) > 1 and fitted.nodes == 1:
            notes.append(f"fits one node of {gpu}: stays on one node (--nodes {request.nodes} is not needed)")
        mechanism = fitted.multinode
        if mechanism is not None and request.local_nodes:
            notes.append(
                f"{fitted.nodes} nodes, all on this host (--local-nodes: a test of the multi-node launch), "
                f"{mechanism.mechanism.value}: {mechanism.reason}"
            )
        elif mechanism is not None:
            notes.append(
                f"{fitted.nodes} nodes of {gpu} (the fewest that fit), {mechanism.mechanism.value}: {mechanism.reason}"
            )
            if mechanism.mechanism.value == "ray":
                warnings.append(
                    f"the Ray mechanism of {engine.name} {version} needs the ray package in every node's "
                    "environment; envman's lock does not add it"
                )
        if mechanism is not None and mechanism.interface_env and not request.local_nodes:
            notes.append(
                f"nodes with several network interfaces: --network-interface IFACE sets "
                f"{', '.join(mechanism.interface_env)} on every node ({engine.name}'s docs)"
            )
        notes.append(f"memory: {estimate.explain()}")
        return Plan(
            model=model,
            engine=engine.name,
            engine_version=version,
            variant=variant,
            artifact=artifact,
            dtype=dtype,
            tensor_parallel_size=tp,
            nodes=fitted.nodes,
            pipeline_parallel_size=fitted.pipeline_parallel_size,
            data_parallel_size=fitted.data_parallel_size,
            expert_parallel=bool(mechanism and mechanism.expert_parallel),
            multinode=mechanism,
            max_model_len=estimate.max_model_len,
            memory_utilization=utilization,
            memory=estimate,
            host=self.host,
            max_num_batched_tokens=planner.max_num_batched_tokens,
            requires=self._requires(engine.name, version, variant),
            trust_remote_code=request.trust_remote_code,
            engine_args=tuple(args),
            engine_env=env,
            notes=tuple(notes),
            warnings=tuple(warnings),
            integrations=integrations,
        )

    def _vendor_build(self, engine: Engine, variant: Variant, version: Version) -> tuple[str | None, bool]:
        """Another build of the same release for this accelerator, from the project's own index,
        that this host can run by its declared CUDA version: the way out, and whether it is configured."""
        for other in engine.variants.values():
            if other is variant or other.accelerator is not variant.accelerator or not other.own_index:
                continue
            if other.versions and version not in other.versions:
                continue
            req = declared_requirements(self.matrix, other)
            if req is None or check_host(req, self.host):
                continue
            where = getattr(other, other.own_index)
            if other.configured:
                shown = where if isinstance(where, str) else " ".join(where)
                return (
                    f"its CUDA {other.cuda} build runs here: variant {other.name}, from {shown}",
                    True,
                )
            from envman.matrix.overrides import configure_hint  # only for a vendor build (tomllib)

            return (
                f"or use its CUDA {other.cuda} build from the project's own index, variant {other.name} "
                f"(driver >= {req.min_driver}): {configure_hint(engine.name, other)}",
                False,
            )
        return None, False

    def _older_driver_line(self, engine: str, variant: str, version: Version, floor: Version | None) -> str:
        """Where a lower driver floor would do: the newest older build (above the floor) of an older CUDA line."""
        current = requirements_for(self.matrix, engine, str(version), variant)
        if current is None or current.min_driver is None:
            return ""
        probed = sorted(
            (v for (e, var, _), r in self.matrix.build_requirements.items() if e == engine and var == variant
             for v in [r.version] if v < version and (floor is None or v >= floor)),
            reverse=True,
        )  # fmt: skip
        for older in probed:
            req = requirements_for(self.matrix, engine, str(older), variant)
            if req is not None and req.min_driver and Version(req.min_driver) < Version(current.min_driver):
                return (
                    f"; or upgrade the driver to >= {req.min_driver} for {engine} {older} "
                    f"(CUDA {req.cuda_runtime}, not yet smoke-tested)"
                )
        return ""

    def _requires(self, engine: str, version: Version, variant: Variant) -> dict[str, object]:
        """What the build needs from the host (driver, CUDA runtime, GPU architectures, glibc)."""
        if variant.accelerator is not Accelerator.CUDA:
            return NONE.to_json()
        req = requirements_for(self.matrix, engine, str(version), variant.name)
        req = req or declared_requirements(self.matrix, variant)
        if req is None:
            return NONE.to_json() | {"evidence": f"not probed: `envman probe --host-requirements --engine {engine}`"}
        return req.to_json()

    def _under_frontend(self, plan: Plan, drive: Drive, variant: Variant) -> Plan:
        """``plan`` run under the chosen frontend: its release, the pair's flags and packages."""
        assert self._frontend is not None
        frontend_variant = frontends.variant_for(self._frontend.frontend, variant)
        if frontend_variant is None:
            return plan
        chosen = frontends.plan_for(self._frontend, drive, frontend_variant)
        note = frontends.note(chosen, self._frontend, drive, plan.engine, plan.engine_version)
        # the pair's flags are in the frontend's env; the integration notes are for plans without one
        return Plan(**{**plan.__dict__, "frontend": chosen, "notes": (*plan.notes, note), "integrations": ()})

    # -- failure -----------------------------------------------------------------

    def _no_plan(
        self, model: Model, request: PlanRequest, rejected: list[Rejection], forced: list[_Candidate]
    ) -> TargetError:
        by_engine: dict[str, list[str]] = {}
        for r in rejected:
            where = " ".join(x for x in (r.version, r.variant, r.format) if x)
            by_engine.setdefault(r.engine, []).append(f"{where}: {r.reason}" if where else r.reason)
        lines = []
        for engine, reasons in by_engine.items():
            lines.append(f"{engine}:")
            lines.extend(f"  - {reason}" for reason in dict.fromkeys(reasons))
        scope = f" with --engine {request.engine}" if request.engine else ""
        if self._frontend is not None:
            scope += f" under {self._frontend.frontend.name} {self._frontend.version}"
        soft = forced or (self._frontend is not None and any(r.soft for r in rejected))
        hint = "--force overrides floors, known-bad versions and memory limits" if soft else None
        if not hint:
            hint = "try another --hardware, --format, or a smaller model; `envman models` lists the catalog"
        error = TargetError(
            f"nothing can serve {model.name} on {self.host.describe()}{scope}:\n" + "\n".join(lines), hint=hint
        )
        error.rejected = rejected  # type: ignore[attr-defined]
        return error


def plan(matrix: Matrix, host: Host, request: PlanRequest) -> Plan:
    return Planner(matrix, host).plan(request)
