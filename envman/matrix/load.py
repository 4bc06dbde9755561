"""Read matrix.toml, check every field, and return the frozen :class:`Matrix`.

Every problem is collected (not just the first) and reported with its line and key
path, e.g. ``matrix.toml:42 families.gemma3.engines.vllm.min_version: '0.8x' is not
a version``. After this module the rest of envman trusts the data.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from packaging.version import Version

from envman.errors import ConfigError
from envman.matrix.engine_rules import parse_engine_rules
from envman.matrix.hoststack import parse_build_requirements, parse_cuda_drivers
from envman.matrix.lines import LineIndex
from envman.matrix.lines import Path as KeyPath
from envman.matrix.reader import Problems, Reader, decode, parse_enum, parse_toml, parse_version
from envman.matrix.schema import (
    Accelerator,
    Artifact,
    CrossNode,
    DependencyOverride,
    Drive,
    DtypeRule,
    Engine,
    Family,
    Format,
    Frontend,
    FrontendKnownBad,
    GpuSpec,
    Integration,
    KnownBad,
    Matrix,
    Modality,
    Model,
    MultiNode,
    NodeMechanism,
    PlannerDefaults,
    QuantSpec,
    Rule,
    Signature,
    SpecVersion,
    Support,
    Variant,
    VariantLimit,
    Verified,
)

SCHEMA_VERSION = 1


def _each(
    problems: Problems, data: Mapping[str, Any], where: KeyPath, build: Callable[[str, Reader], Any]
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, table in data.items():
        if not isinstance(table, dict):
            problems.add(where + (name,), f"expected a table, got {table!r}")
            continue
        reader = Reader(problems, table, where + (name,))
        out[name] = build(name, reader)
        reader.done()
    return out


def _dates(r: Reader, key: str) -> dict[str, str]:
    """A table of version -> release date (YYYY-MM-DD)."""
    out: dict[str, str] = {}
    for version, date in r.table(key).items():
        where = r.where + (key, version)
        if parse_version(r.p, where, version) is None:
            continue
        text = date.isoformat() if hasattr(date, "isoformat") else date
        if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            r.p.add(where, f"expected a date (YYYY-MM-DD), got {date!r}")
            continue
        out[version] = text
    return out


def _requirements(r: Reader, key: str) -> tuple[str, ...]:
    from packaging.requirements import InvalidRequirement, Requirement

    out = r.strs(key)
    for i, text in enumerate(out):
        try:
            Requirement(text)
        except InvalidRequirement as error:
            r.p.add(r.where + (key, i), f"{text!r} is not a requirement: {error}")
    return out


def _variant(engine: str, name: str, r: Reader) -> Variant:
    r.name(name)
    limits = []
    for i, table in enumerate(r.tables("limits")):
        lr = Reader(r.p, table, r.where + ("limits", i))
        limits.append(
            VariantLimit(
                versions=lr.spec("versions"),
                min_compute_capability=lr.version("min_compute_capability", required=True) or Version("0"),
                reason=lr.text("reason"),
                evidence=lr.text("evidence"),
                last_version=lr.version("last_version"),
            )
        )
        lr.done()
    return Variant(
        name=name,
        package=r.text("package"),
        accelerator=r.enum("accelerator", Accelerator),
        os=r.strs("os", ("linux",)),
        arch=r.strs("arch", ("x86_64", "aarch64")),
        min_compute_capability=r.version("min_compute_capability"),
        cuda=r.text("cuda", None),
        index_url=r.text("index_url", None),
        extra_index_urls=r.strs("extra_index_urls"),
        find_links=r.strs("find_links"),
        exclude=r.strs("exclude"),
        requirements=_requirements(r, "requirements"),
        newer=_package_dates(r, "newer"),
        newer_reason=r.text("newer_reason", ""),
        build_env=r.env("build_env"),
        platform=r.text("platform", None),
        versions=r.spec("versions", ""),
        limits=tuple(limits),
        releases=_dates(r, "releases"),
        lock_plugins=r.strs("lock_plugins"),
        own_index=_own_index(r),
        local_version=r.text("local_version", ""),
        lockable=r.flag("lock", True),
        lock_note=r.text("lock_note", ""),
        evidence=r.text("evidence", ""),
        lines=r.versions("lines"),
        lines_evidence=r.text("lines_evidence", ""),
        smoke_args=r.strs("smoke_args"),
    )


def _own_index(r: Reader) -> str:
    key = r.text("own_index", "")
    if key and key not in ("index_url", "find_links"):
        r.p.add(r.where + ("own_index",), f"{key!r} is not index_url or find_links")
        return ""
    return key


def _rule(r: Reader) -> Rule:
    return Rule(
        versions=r.spec("versions", ""),
        formats=r.enums("formats", Format),
        env=r.env("env"),
        args=r.strs("args"),
        reason=r.text("reason"),
        evidence=r.text("evidence"),
    )


def _engine(p: Problems, name: str, r: Reader) -> Engine:
    r.name(name)
    quant_methods: dict[Format, tuple[str, ...]] = {}
    qm = r.table("quant_methods")
    for key, methods in qm.items():
        fmt = parse_enum(p, r.where + ("quant_methods", key), Format, key)
        sub = Reader(p, {"v": methods}, r.where + ("quant_methods",))
        if fmt is not None:
            quant_methods[fmt] = sub.strs("v")
    releases = _dates(r, "releases")
    overrides = []
    for i, table in enumerate(r.tables("dependency_overrides")):
        orr = Reader(p, table, r.where + ("dependency_overrides", i))
        overrides.append(
            DependencyOverride(
                versions=orr.spec("versions"),
                requirements=orr.strs("requirements", None),
                reason=orr.text("reason"),
                evidence=orr.text("evidence"),
                force=orr.flag("force", True),
            )
        )
        orr.done()
    variants = _each(
        p, r.table("variants", required=True), r.where + ("variants",), lambda n, vr: _variant(name, n, vr)
    )
    if not variants:
        p.add(r.where + ("variants",), "an engine needs at least one variant")
    rules = []
    for i, table in enumerate(r.tables("rules")):
        rr = Reader(p, table, r.where + ("rules", i))
        rules.append(_rule(rr))
        rr.done()
    multinode = []
    for i, table in enumerate(r.tables("multinode")):
        mr = Reader(p, table, r.where + ("multinode", i))
        multinode.append(_multinode(mr))
        mr.done()
    return Engine(
        multinode=tuple(multinode),
        name=name,
        description=r.text("description"),
        package=r.text("package"),
        # what `import` proves the engine is there; most distributions import under their own name
        module=r.text("module", r.data.get("package", name).replace("-", "_")),
        probe=r.text("probe"),
        formats=r.enums("formats", Format),
        tensor_parallel=r.flag("tensor_parallel"),
        quant_methods=quant_methods,
        variants=variants,
        rules=tuple(rules),
        releases=releases,
        known_good=r.versions("known_good"),
        known_good_evidence=r.text("known_good_evidence", ""),
        dependency_overrides=tuple(overrides),
        homepage=r.text("homepage", ""),
    )


def _multinode(r: Reader) -> MultiNode:
    entry = MultiNode(
        versions=r.spec("versions"),
        mechanism=r.enum("mechanism", NodeMechanism),
        across=r.enum("across", CrossNode),
        reason=r.text("reason"),
        evidence=r.text("evidence"),
        expert_parallel=r.flag("expert_parallel"),
        moe_only=r.flag("moe_only"),
        node_env=r.strs("node_env"),
        interface_env=r.strs("interface_env"),
    )
    if entry.mechanism is NodeMechanism.DATA_PARALLEL and entry.across is not CrossNode.DATA:
        r.p.add(r.where + ("across",), "the data-parallel mechanism splits data across nodes: across = 'data'")
    return entry


def _package_dates(r: Reader, key: str) -> dict[str, str]:
    """A table of package -> date (YYYY-MM-DD)."""
    out: dict[str, str] = {}
    for package, date in r.table(key).items():
        text = date.isoformat() if hasattr(date, "isoformat") else date
        if not isinstance(text, str) or not re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
            r.p.add(r.where + (key, package), f"expected a date (YYYY-MM-DD), got {date!r}")
            continue
        out[package] = text
    return out


def _frontend(p: Problems, name: str, r: Reader, engines: Mapping[str, Engine]) -> Frontend:
    """``[frontends.NAME]``: releases, install variants, which engine releases each release drives."""
    r.name(name)
    requirements: dict[str, tuple[str, ...]] = {}
    newer: dict[str, dict[str, str]] = {}

    def variant(vname: str, vr: Reader) -> Variant:
        requirements[vname] = vr.strs("requirements")
        variant = _variant(name, vname, vr)
        newer[vname] = dict(variant.newer)
        return variant

    variants = _each(p, r.table("variants", required=True), r.where + ("variants",), variant)
    drives = []
    for i, table in enumerate(r.tables("drives")):
        dr = Reader(p, table, r.where + ("drives", i))
        engine = dr.text("engine")
        if isinstance(engine, str) and engine not in engines:
            p.add(r.where + ("drives", i, "engine"), f"unknown engine {engine!r}")
        drives.append(
            Drive(
                versions=dr.spec("versions"),
                engine=engine,
                engine_versions=dr.spec("engine_versions", ""),
                model_engine=dr.text("model_engine"),
                env=dr.env("env"),
                requirements=dr.strs("requirements"),
                known_good=dr.versions("known_good"),
                reason=dr.text("reason"),
                evidence=dr.text("evidence"),
            )
        )
        dr.done()
    bad = []
    for i, table in enumerate(r.tables("known_bad")):
        br = Reader(p, table, r.where + ("known_bad", i))
        bad.append(
            FrontendKnownBad(
                versions=br.spec("versions"),
                engine=br.text("engine"),
                engine_versions=br.spec("engine_versions", ""),
                families=br.strs("families"),
                reason=br.text("reason"),
                error=br.text("error"),
                fixed_in=br.version("fixed_in"),
                evidence=br.text("evidence"),
            )
        )
        br.done()
    specs = []
    for i, table in enumerate(r.tables("specs")):
        sr = Reader(p, table, r.where + ("specs", i))
        specs.append(
            SpecVersion(sr.spec("versions"), sr.integer("spec_version", minimum=1, maximum=9), sr.text("evidence"))
        )
        sr.done()
    return Frontend(
        name=name,
        description=r.text("description"),
        package=r.text("package"),
        module=r.text("module", name),
        command=r.text("command"),
        releases=_dates(r, "releases"),
        known_good=r.versions("known_good"),
        variants=variants,
        requirements=requirements,
        newer=newer,
        drives=tuple(drives),
        specs=tuple(specs),
        known_bad=tuple(bad),
        known_good_evidence=r.text("known_good_evidence", ""),
        homepage=r.text("homepage", ""),
    )


def _known_bad(r: Reader) -> KnownBad:
    return KnownBad(
        versions=r.spec("versions"),
        formats=r.enums("formats", Format),
        reason=r.text("reason"),
        error=r.text("error", ""),
        fixed_in=r.version("fixed_in"),
        evidence=r.text("evidence"),
    )


def _support(p: Problems, family: str, engine: str, r: Reader) -> Support:
    bad = []
    for i, table in enumerate(r.tables("known_bad")):
        br = Reader(p, table, r.where + ("known_bad", i))
        bad.append(_known_bad(br))
        br.done()
    min_version = r.version("min_version")
    evidence = r.text("evidence", "")
    if min_version is not None and not evidence:
        p.add(r.where + ("evidence",), "a min_version needs its evidence (release + file, or a smoke run)")
    verified = []
    for i, table in enumerate(r.tables("verified")):
        vr = Reader(p, table, r.where + ("verified", i))
        verified.append(
            Verified(
                version=vr.version("version", required=True) or Version("0"),
                variant=vr.text("variant"),
                date=vr.text("date"),
                hardware=vr.text("hardware", ""),
                evidence=vr.text("evidence"),
                lock=vr.text("lock", ""),
                model=vr.text("model", ""),
            )
        )
        vr.done()
    known_good = r.versions("known_good")
    for i, good in enumerate(known_good):
        if min_version is not None and good < min_version:
            p.add(r.where + ("known_good", i), f"{good} is below min_version {min_version}")
    return Support(
        family=family,
        engine=engine,
        min_version=min_version,
        evidence=evidence,
        known_good=known_good,
        formats=r.enums("formats", Format),
        known_bad=tuple(bad),
        env=r.env("env"),
        args=r.strs("args"),
        note=r.text("note", ""),
        verified=tuple(verified),
    )


def _family(p: Problems, name: str, r: Reader, engines: Mapping[str, Engine]) -> Family:
    supports: dict[str, Support] = {}
    for engine, table in r.table("engines").items():
        where = r.where + ("engines", engine)
        if engine not in engines:
            import difflib

            close = difflib.get_close_matches(engine, list(engines), n=1)
            p.add(where, f"unknown engine {engine!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
            continue
        if not isinstance(table, dict):
            p.add(where, f"expected a table, got {table!r}")
            continue
        sr = Reader(p, table, where)
        supports[engine] = _support(p, name, engine, sr)
        sr.done()
    return Family(
        name=name,
        description=r.text("description", ""),
        hf_architectures=r.strs("hf_architectures"),
        gguf_architectures=r.strs("gguf_architectures"),
        model_types=r.strs("model_types"),
        engines=supports,
    )


def _artifact(r: Reader) -> Artifact:
    return Artifact(
        format=r.enum("format", Format),
        repo=r.repo("repo"),
        quantization=r.text("quantization", None),
        quant_method=r.text("quant_method", None),
        file=r.relative_file("file"),
        dtype=r.text("dtype", None),
        producer=r.text("producer", None),
        local_only=r.flag("local_only"),
    )


def _model(p: Problems, name: str, r: Reader, families: Mapping[str, Family]) -> Model:
    family = r.text("family")
    if family and family not in families:
        import difflib

        close = difflib.get_close_matches(family, list(families), n=1)
        p.add(r.where + ("family",), f"unknown family {family!r}" + (f" (did you mean {close[0]!r}?)" if close else ""))
    artifacts = []
    for i, table in enumerate(r.tables("artifacts")):
        ar = Reader(p, table, r.where + ("artifacts", i))
        artifacts.append(_artifact(ar))
        ar.done()
    if not artifacts:
        p.add(r.where + ("artifacts",), "a model needs at least one artifact")
    r.name(name)
    params = r.number("params_b", low=0.0, high=100_000.0)
    heads = r.integer("attention_heads", minimum=1, maximum=4096)
    kv_heads = r.integer("kv_heads", minimum=1, maximum=4096)
    if heads and kv_heads and heads % kv_heads:
        p.add(r.where + ("kv_heads",), f"{kv_heads} does not divide attention_heads {heads}")
    modalities = r.enums("modalities", Modality)
    return Model(
        name=name,
        family=family,
        hf_architecture=r.text("hf_architecture"),
        params_b=params,
        active_params_b=r.number("active_params_b", params, low=0.0, high=100_000.0),
        layers=r.integer("layers", minimum=1, maximum=4096),
        hidden_size=r.integer("hidden_size", minimum=1, maximum=1 << 20),
        attention_heads=heads,
        kv_heads=kv_heads,
        head_dim=r.integer("head_dim", minimum=1, maximum=1 << 16),
        vocab_size=r.integer("vocab_size", minimum=1, maximum=1 << 24),
        max_context=r.integer("max_context", minimum=1, maximum=1 << 30),
        modalities=tuple(sorted(modalities, key=list(Modality).index)),
        artifacts=tuple(artifacts),
        trust_remote_code=r.flag("trust_remote_code"),
        smoke=r.flag("smoke"),
        evidence=r.text("evidence", ""),
        aliases=r.strs("aliases"),
    )


def _planner(p: Problems, r: Reader, engines: Mapping[str, Engine]) -> PlannerDefaults:
    preference: dict[Accelerator, tuple[str, ...]] = {}
    pref = r.table("preference", required=True)
    for key, names in pref.items():
        acc = parse_enum(p, r.where + ("preference", key), Accelerator, key)
        sub = Reader(p, {key: names}, r.where + ("preference",))
        listed = sub.strs(key)
        for i, engine in enumerate(listed):
            if engine not in engines:
                p.add(r.where + ("preference", key, i), f"unknown engine {engine!r}")
        if acc is not None:
            preference[acc] = listed
    fp_reader = Reader(p, {"format_preference": r._get("format_preference", [])}, r.where)
    return PlannerDefaults(
        default_max_model_len=r.integer("default_max_model_len", minimum=1, maximum=1 << 30),
        gpu_memory_utilization=r.number("gpu_memory_utilization", low=0.05, high=1.0),
        cpu_memory_utilization=r.number("cpu_memory_utilization", low=0.05, high=1.0),
        overhead_gib=r.number("overhead_gib", low=0.0, high=1024.0),
        max_num_batched_tokens=r.integer("max_num_batched_tokens", minimum=1, maximum=1 << 30),
        preference=preference,
        format_preference=tuple(
            sorted(fp_reader.enums("format_preference", Format), key=lambda f: _order(fp_reader, f))
        ),
    )


def _order(reader: Reader, fmt: Format) -> int:
    listed = reader.data.get("format_preference", [])
    return listed.index(fmt.value) if fmt.value in listed else len(listed)


def parse_matrix(text: str, path: Path) -> Matrix:
    """Validate ``text`` (the content of ``path``) into a :class:`Matrix`."""
    data = parse_toml(text, path)
    problems = Problems(path, LineIndex(text))
    root = Reader(problems, data, ())
    schema = root.integer("schema_version")
    if schema and schema != SCHEMA_VERSION:
        problems.add(("schema_version",), f"this envman reads schema_version {SCHEMA_VERSION}, not {schema}")
    engines = _each(problems, root.table("engines", required=True), ("engines",), lambda n, r: _engine(problems, n, r))
    families = _each(
        problems, root.table("families", required=True), ("families",), lambda n, r: _family(problems, n, r, engines)
    )
    models = _each(
        problems, root.table("models", required=True), ("models",), lambda n, r: _model(problems, n, r, families)
    )
    gpus = _each(
        problems,
        root.table("gpus"),
        ("gpus",),
        lambda n, r: GpuSpec(
            name=n,
            memory_gib=r.number("memory_gib", low=1.0, high=16384.0),
            compute_capability=r.version("compute_capability", required=True) or Version("0"),
            aliases=r.strs("aliases"),
            evidence=r.text("evidence"),
        ),
    )
    dtypes = _each(
        problems,
        root.table("dtypes", required=True),
        ("dtypes",),
        lambda n, r: DtypeRule(
            name=n,
            bytes=r.number("bytes", low=0.125, high=64.0),
            min_compute_capability=r.version("min_compute_capability"),
            fallback=r.text("fallback", None),
            reason=r.text("reason", ""),
            evidence=r.text("evidence", ""),
            cpu_flag=r.text("cpu_flag", None),
        ),
    )
    quantizations = []
    for i, table in enumerate(root.tables("quantizations")):
        qr = Reader(problems, table, ("quantizations", i))
        quantizations.append(
            QuantSpec(
                format=qr.enum("format", Format),
                quantization=qr.text("quantization", None),
                bits_per_weight=qr.number("bits_per_weight", low=1.0, high=32.0),
                min_compute_capability=qr.version("min_compute_capability"),
                note=qr.text("note", ""),
            )
        )
        qr.done()
    signatures = []
    for i, table in enumerate(root.tables("signatures")):
        sr = Reader(problems, table, ("signatures", i))
        pattern = sr.text("pattern")
        try:
            compiled = re.compile(pattern)
        except re.error as error:
            problems.add(("signatures", i, "pattern"), f"is not a valid regular expression: {error}")
            compiled = None
        kind = sr.text("kind", "generic")
        if kind not in ("generic", "architecture"):
            problems.add(("signatures", i, "kind"), f"{kind!r} is not one of: generic, architecture")
        if kind == "architecture" and compiled is not None and "arch" not in compiled.groupindex:
            problems.add(("signatures", i, "pattern"), "an architecture signature needs a (?P<arch>...) group")
        sig_engines = sr.strs("engines")
        for j, engine in enumerate(sig_engines):
            if engine not in engines:
                problems.add(("signatures", i, "engines", j), f"unknown engine {engine!r}")
        signatures.append(
            Signature(
                id=sr.text("id"),
                pattern=pattern,
                cause=sr.text("cause"),
                fix=sr.text("fix"),
                engines=sig_engines,
                kind=kind,
                evidence=sr.text("evidence", ""),
            )
        )
        sr.done()
    integrations = []
    for i, table in enumerate(root.tables("integrations")):
        ir = Reader(problems, table, ("integrations", i))
        engine = ir.text("engine")
        if engine and engine not in engines:
            problems.add(("integrations", i, "engine"), f"unknown engine {engine!r}")
        integrations.append(
            Integration(
                tool=ir.text("tool"),
                engine=engine,
                versions=ir.spec("versions"),
                env=ir.env("env"),
                reason=ir.text("reason"),
                evidence=ir.text("evidence"),
            )
        )
        ir.done()
    cuda_drivers = parse_cuda_drivers(problems, root)
    build_requirements = parse_build_requirements(problems, root, engines)
    engine_rules = parse_engine_rules(problems, root, engines)
    for engine in engines.values():
        if engine.name not in engine_rules:
            continue  # never probed: its lock_plugins lock nothing (envman.matrix.engine_rules.locked_plugins)
        plugins = {p.package for p in engine_rules[engine.name].quant_plugins}
        for variant in engine.variants.values():
            for i, package in enumerate(variant.lock_plugins):
                if package not in plugins:
                    problems.add(
                        ("engines", engine.name, "variants", variant.name, "lock_plugins", i),
                        f"{package!r} is no plugin of engine_rules.{engine.name}.quant_plugins "
                        f"({', '.join(sorted(plugins)) or 'none'})",
                    )

    frontends: dict[str, Frontend] = _each(
        problems, root.table("frontends"), ("frontends",), lambda n, fr: _frontend(problems, n, fr, engines)
    )
    # The flags a frontend needs to drive an engine, as plan notes for plans without --frontend.
    integrations = [
        Integration(f.name, d.engine, d.versions, d.env, d.reason, d.evidence)
        for f in frontends.values()
        for d in f.drives
        if d.env
    ]
    planner_reader = Reader(problems, root.table("planner", required=True), ("planner",))
    planner = _planner(problems, planner_reader, engines)
    planner_reader.done()
    _check_aliases(problems, models)
    root.done()
    problems.raise_if_any()
    return Matrix(
        path=str(path),
        engines=engines,
        families=families,
        models=models,
        gpus=gpus,
        dtypes=dtypes,
        quantizations=tuple(quantizations),
        signatures=tuple(signatures),
        planner=planner,
        integrations=tuple(integrations),
        cuda_drivers=cuda_drivers,
        build_requirements=build_requirements,
        frontends=frontends,
        engine_rules=engine_rules,
    )


def _check_aliases(problems: Problems, models: Mapping[str, Model]) -> None:
    seen: dict[str, str] = {}
    for model in models.values():
        for alias in model.aliases:
            key = alias.lower()
            if key in models or key in seen:
                problems.add(("models", model.name, "aliases"), f"alias {alias!r} is already used")
            seen[key] = model.name


def load_matrix(path: Path | None = None, environ: Mapping[str, str] | None = None) -> Matrix:
    """Load and validate matrix.toml, then apply the user's index overrides (or reuse the last
    run's result for the same inputs: envman.matrix.cache)."""
    from envman import paths
    from envman.matrix.cache import load_cached

    path = Path(path) if path is not None else paths.default_matrix()
    try:
        text = decode(path, path.read_bytes())
    except FileNotFoundError:
        raise ConfigError(
            f"matrix file {path} does not exist", hint="pass --matrix PATH or set ENVMAN_MATRIX"
        ) from None
    except OSError as error:
        raise ConfigError(f"cannot read matrix file {path}: {error.strerror}") from None
    settings = os.environ if environ is None else environ

    def load() -> Matrix:
        from envman.matrix.overrides import apply_overrides  # tomllib, for the config: only on a miss

        return apply_overrides(parse_matrix(text, path), settings)

    return load_cached(text, path, settings, load)
