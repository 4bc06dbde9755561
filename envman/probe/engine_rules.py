"""Per-release engine rules read from the engine's own source in its released wheel.

For vLLM, two things the planner would otherwise have to remember:

- the model types a release refuses to run in float16: a module-level dict of the config
  code (``_FLOAT16_NOT_SUPPORTED_MODELS`` in ``vllm/config.py`` 0.9, ``vllm/config/__init__.py``
  0.10.2, ``vllm/config/model.py`` 0.11 on), ``model_type -> reason``;
- the quantization methods it registers (``QUANTIZATION_METHODS`` in
  ``vllm/model_executor/layers/quantization/__init__.py``: a list, or ``get_args`` of the
  ``QuantizationMethods`` Literal), the config class each maps to (``method_to_config`` in
  ``get_quantization_config``) and that class's ``get_min_capability()`` (an int, 70 for 7.0),
  followed through base classes where the class inherits it.

Only the ``.py`` members are read from the wheel, by range request (:mod:`.hoststack.remote`),
and the facts are cached by the wheel's sha256 under ``paths.artifacts_dir()/engine_rules/``.
Every fact keeps its member and line.
"""

from __future__ import annotations

import ast
import json
import re
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import PurePosixPath
from typing import Any

from envman import paths, pypi
from envman.errors import TargetError
from envman.files import atomic_write
from envman.probe.hoststack.remote import RemoteWheel
from envman.probe.hoststack.stack import cuda_wheel
from envman.report import NullReporter, Reporter

REVISION = 1  # bump when what is read changes, so cached rules are read again
QUANT_PACKAGE = "vllm/model_executor/layers/quantization"
_QUANT_INIT = f"{QUANT_PACKAGE}/__init__.py"
_CONFIG_MEMBER = re.compile(r"vllm/config(?:\.py|/[^/]+\.py)")
_FLOAT16_TABLE = re.compile(r"_?FLOAT16_NOT_SUPPORTED\w*")
_FLOAT16_MESSAGE = "does not support float16"
_MAX_BASES = 6


@dataclass(frozen=True)
class RefusedDtype:
    model_type: str
    dtype: str  # "float16"
    reason: str  # the release's own words
    member: str
    line: int


@dataclass(frozen=True)
class QuantMethod:
    name: str  # "fp8"
    config_class: str | None  # "Fp8Config"; None when the release maps it to no class we could read
    min_capability: str | None  # "8.0"; None when not a constant (or not found)
    member: str  # where the capability was read (or the class, if no capability)
    line: int
    note: str = ""  # "get_min_capability returns current_platform…" when it is not a constant


@dataclass(frozen=True)
class EngineRules:
    engine: str
    version: str
    wheel: str
    sha256: str
    refused_dtypes: tuple[RefusedDtype, ...]
    refusal_message: str  # "vllm/config/model.py:2399" where the refusal is raised
    quant_methods: tuple[QuantMethod, ...]
    quant_member: str  # "vllm/model_executor/layers/quantization/__init__.py:14"
    deprecated: tuple[str, ...]  # DEPRECATED_QUANTIZATION_METHODS, where the release has it
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> EngineRules:
        return cls(
            engine=data["engine"],
            version=data["version"],
            wheel=data["wheel"],
            sha256=data["sha256"],
            refused_dtypes=tuple(RefusedDtype(**item) for item in data["refused_dtypes"]),
            refusal_message=data["refusal_message"],
            quant_methods=tuple(QuantMethod(**item) for item in data["quant_methods"]),
            quant_member=data["quant_member"],
            deprecated=tuple(data["deprecated"]),
            seconds=0.0,
        )

    def method(self, name: str) -> QuantMethod | None:
        return next((m for m in self.quant_methods if m.name == name), None)


# -- reading one release --------------------------------------------------------------------


def vllm_rules(release: pypi.Release, *, reporter: Reporter | None = None) -> EngineRules:
    """The rules of one vLLM release, from the cache or its Linux wheel's Python members."""
    wheel = cuda_wheel(release)
    if wheel is None:
        raise TargetError(f"vllm {release.version} has no Linux x86_64 wheel on the index")
    cache = paths.artifacts_dir() / "engine_rules" / f"{wheel.sha256}.vllm.r{REVISION}.json"
    try:
        return EngineRules.from_json(json.loads(cache.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        pass  # not read yet, or unreadable: read it again
    reporter = reporter or NullReporter()
    started = time.monotonic()
    with reporter.status(f"reading {wheel.filename}: config and quantization sources"), RemoteWheel(wheel.url) as whl:
        sources = _Sources(whl)
        refused, message = _refused_dtypes(sources)
        methods, quant_member, deprecated = _quant_methods(sources)
    rules = EngineRules(
        engine="vllm",
        version=str(release.version),
        wheel=wheel.filename,
        sha256=wheel.sha256,
        refused_dtypes=refused,
        refusal_message=message,
        quant_methods=methods,
        quant_member=quant_member,
        deprecated=deprecated,
        seconds=round(time.monotonic() - started, 2),
    )
    atomic_write(cache, json.dumps(rules.to_json(), indent=1))
    return rules


class _Sources:
    """The wheel's Python members, read and parsed on first use."""

    def __init__(self, wheel: RemoteWheel) -> None:
        self.wheel = wheel
        self.names = set(wheel.names())
        self._trees: dict[str, tuple[str, ast.Module] | None] = {}

    def module(self, member: str) -> str:
        """``pkg/x.py``, or ``pkg/x/__init__.py`` where ``x`` is a package."""
        package = member.removesuffix(".py") + "/__init__.py"
        return package if member not in self.names and package in self.names else member

    def tree(self, member: str) -> tuple[str, ast.Module] | None:
        if member not in self._trees:
            found = None
            if member in self.names:
                text = self.wheel.read(member).decode("utf-8", "replace")
                try:
                    found = (text, ast.parse(text, filename=member))
                except (SyntaxError, ValueError):
                    found = None
            self._trees[member] = found
        return self._trees[member]


def _refused_dtypes(sources: _Sources) -> tuple[tuple[RefusedDtype, ...], str]:
    refused: list[RefusedDtype] = []
    message = ""
    for member in sorted(n for n in sources.names if _CONFIG_MEMBER.fullmatch(n)):
        parsed = sources.tree(member)
        if parsed is None:
            continue
        text, tree = parsed
        for node in tree.body:
            target, value = _assignment(node)
            if target is None or not _FLOAT16_TABLE.fullmatch(target) or not isinstance(value, ast.Dict):
                continue
            for key, reason in zip(value.keys, value.values, strict=True):
                if isinstance(key, ast.Constant) and isinstance(key.value, str):
                    refused.append(RefusedDtype(key.value, "float16", _constant_text(reason), member, key.lineno))
        if not message:
            line = next((i for i, ln in enumerate(text.splitlines(), 1) if _FLOAT16_MESSAGE in ln), 0)
            message = f"{member}:{line}" if line else ""
    return tuple(refused), message


def _quant_methods(sources: _Sources) -> tuple[tuple[QuantMethod, ...], str, tuple[str, ...]]:
    parsed = sources.tree(_QUANT_INIT)
    if parsed is None:
        raise TargetError(f"{sources.wheel.url} has no readable {_QUANT_INIT}")
    _text, tree = parsed
    names, line = _method_names(tree)
    deprecated: tuple[str, ...] = ()
    for node in tree.body:
        target, value = _assignment(node)
        if target == "DEPRECATED_QUANTIZATION_METHODS" and isinstance(value, (ast.List, ast.Tuple)):
            deprecated = tuple(_strings(value.elts))
    classes = _method_classes(tree)
    methods = []
    for name in names:
        if name not in classes:
            methods.append(
                QuantMethod(name, None, None, _QUANT_INIT, line, "no config class in get_quantization_config")
            )
            continue
        cls, module = classes[name]
        methods.append(_capability(sources, name, cls, module))
    return tuple(methods), f"{_QUANT_INIT}:{line}", deprecated


def _method_names(tree: ast.Module) -> tuple[list[str], int]:
    """``QUANTIZATION_METHODS`` as a list literal, or as ``get_args`` of a Literal alias."""
    literals: dict[str, tuple[list[str], int]] = {}
    for node in tree.body:
        target, value = _assignment(node)
        if target is None or value is None:
            continue
        if isinstance(value, ast.Subscript) and _name(value.value) == "Literal":
            elements = value.slice.elts if isinstance(value.slice, ast.Tuple) else [value.slice]
            literals[target] = (_strings(elements), node.lineno)
        if target != "QUANTIZATION_METHODS":
            continue
        if isinstance(value, (ast.List, ast.Tuple)):
            return _strings(value.elts), node.lineno
        if isinstance(value, ast.Dict):  # 0.6 and older: a dict of method -> class
            return _strings(value.keys), node.lineno
        alias = _get_args_of(value)
        if alias in literals:
            return literals[alias]
    raise TargetError(f"{_QUANT_INIT}: no QUANTIZATION_METHODS list this reader understands")


def _get_args_of(value: ast.expr) -> str | None:
    """``list(get_args(QuantizationMethods))`` -> "QuantizationMethods"."""
    while isinstance(value, ast.Call) and value.args:
        if _name(value.func) == "get_args" and isinstance(value.args[0], ast.Name):
            return value.args[0].id
        value = value.args[0]
    return None


def _method_classes(tree: ast.Module) -> dict[str, tuple[str, str | None]]:
    """``method -> (class, module member)`` from ``method_to_config`` in ``get_quantization_config``
    and the imports inside it (``from .fp8 import Fp8Config``; ``X as Y``; ``y = X``)."""
    bound: dict[str, tuple[str, str | None]] = {}  # local name -> (class name in its module, member)
    classes: dict[str, tuple[str, str | None]] = {}
    for function in ast.walk(tree):
        if not (isinstance(function, ast.FunctionDef) and function.name == "get_quantization_config"):
            continue
        for node in sorted(_statements(function), key=lambda n: n.lineno):
            if isinstance(node, ast.ImportFrom):
                member = _module_member(node, _QUANT_INIT)
                for alias in node.names:
                    bound[alias.asname or alias.name] = (alias.name, member)
            else:
                target, value = _assignment(node)
                source = _name(value)
                if target and source in bound:  # deepseek_config = DeepseekV41FP8Config (0.32)
                    bound.setdefault(target, bound[source])
        for statement in _statements(function):
            target, value = _assignment(statement)
            if target != "method_to_config" or not isinstance(value, ast.Dict):
                continue
            for key, cls in zip(value.keys, value.values, strict=True):
                local = _name(cls)
                if isinstance(key, ast.Constant) and isinstance(key.value, str) and local:
                    found = bound.get(local, (local, None))
                    classes[key.value] = found
    return classes


def _capability(sources: _Sources, method: str, registered: str, module: str | None) -> QuantMethod:
    """``get_min_capability`` of ``registered`` (defined in ``module``), or of the nearest base
    class that defines it."""
    cls, seen = registered, 0
    while module is not None and seen < _MAX_BASES:
        seen += 1
        module = sources.module(module)
        parsed = sources.tree(module)
        if parsed is None:
            return QuantMethod(method, registered, None, module, 0, f"{module} is not in the wheel")
        _text, tree = parsed
        definition = next((n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls), None)
        if definition is None:
            source = _import_of(tree, cls, module)  # a package's __init__ re-exporting the class
            if source is None or source == module:
                return QuantMethod(method, registered, None, module, 0, f"no class {cls} in {module}")
            module = source
            continue
        function = next(
            (n for n in definition.body if isinstance(n, ast.FunctionDef) and n.name == "get_min_capability"), None
        )
        if function is not None:
            returns = [n for n in ast.walk(function) if isinstance(n, ast.Return) and n.value is not None]
            values = [r.value.value for r in returns if isinstance(r.value, ast.Constant)]
            inherited = f"inherited from {cls}" if cls != registered else ""
            if len(returns) == 1 and len(values) == 1 and isinstance(values[0], int) and values[0] > 0:
                return QuantMethod(method, registered, _cc(values[0]), module, returns[0].lineno, inherited)
            where = returns[0].lineno if returns else function.lineno
            code = ast.unparse(returns[0].value) if returns and returns[0].value is not None else "nothing"
            note = f"get_min_capability returns {code}" + (f" ({inherited})" if inherited else "")
            return QuantMethod(method, registered, None, module, where, note)
        base = next((b for b in (_name(b) for b in definition.bases) if b and b != "QuantizationConfig"), None)
        if base is None:
            return QuantMethod(method, registered, None, module, definition.lineno, "no get_min_capability")
        cls, module = base, _import_of(tree, base, module)
    return QuantMethod(method, registered, None, module or "", 0, f"base class {cls} not found")


def _statements(function: ast.FunctionDef) -> list[ast.stmt]:
    return [n for n in ast.walk(function) if isinstance(n, ast.stmt)]


def _import_of(tree: ast.Module, name: str, member: str) -> str | None:
    if any(isinstance(n, ast.ClassDef) and n.name == name for n in tree.body):
        return member
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            return _module_member(node, member)
    return None


def _module_member(node: ast.ImportFrom, importer: str) -> str:
    """The wheel member an import names: ``from .fp8 import X`` in the quantization package."""
    if node.level:
        base = PurePosixPath(importer).parent
        for _ in range(node.level - 1):
            base = base.parent
        parts = [str(base)] + (node.module.split(".") if node.module else [])
        path = "/".join(parts)
    else:
        path = (node.module or "").replace(".", "/")
    return f"{path}.py"


def _cc(value: int) -> str:
    """vLLM's capability int (70, 89, 100) as "7.0", "8.9", "10.0"."""
    return f"{value // 10}.{value % 10}"


def _assignment(node: ast.stmt | ast.AST) -> tuple[str | None, ast.expr | None]:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        return node.targets[0].id, node.value
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
        return node.target.id, node.value
    return None, None


def _name(node: ast.expr | None) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _strings(nodes: Sequence[ast.expr | None]) -> list[str]:
    return [n.value for n in nodes if isinstance(n, ast.Constant) and isinstance(n.value, str)]


def _constant_text(node: ast.expr) -> str:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr | ast.BinOp):
        return ast.unparse(node)
    return ast.unparse(node)


# -- every release of a range ---------------------------------------------------------------


@dataclass(frozen=True)
class RulesProbe:
    engine: str
    rules: tuple[EngineRules, ...]  # oldest first
    skipped: tuple[str, ...]
    seconds: float


def probe_engine_rules(
    releases: Sequence[pypi.Release], *, reporter: Reporter | None = None, workers: int = 4
) -> RulesProbe:
    """The rules of each vLLM release in ``releases`` (already filtered), ``workers`` at a time."""
    reporter = reporter or NullReporter()
    started = time.monotonic()

    def one(release: pypi.Release) -> EngineRules | str:
        try:
            return vllm_rules(release, reporter=reporter)
        except TargetError as error:
            return f"{release.version}: {error.message}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        results = list(pool.map(one, releases))
    rules = tuple(r for r in results if isinstance(r, EngineRules))
    skipped = tuple(r for r in results if isinstance(r, str))
    return RulesProbe("vllm", rules, skipped, round(time.monotonic() - started, 1))


# -- plugin packages that register a method vLLM no longer has -----------------------------


@dataclass(frozen=True)
class PluginMethod:
    package: str  # "vllm-bnb-plugin"
    version: str  # the plugin release read
    method: str  # "bitsandbytes"
    min_capability: str | None
    evidence: str  # "vllm_bnb_plugin-0.0.3-py3-none-any.whl vllm_bnb_plugin/__init__.py l.67 …"


def plugin_methods(package: str, *, reporter: Reporter | None = None) -> tuple[PluginMethod, ...]:
    """The quantization methods the newest release of ``package`` registers with vLLM
    (``register_quantization_config("name")(Config)``), with each config's min capability."""
    releases = pypi.releases(package)
    if not releases:
        raise TargetError(f"{package} has no release on the index")
    release = releases[-1]
    wheels = [f for f in release.files if f.filename.endswith(".whl")]
    wheel = next((f for f in wheels if "x86_64" in f.filename or f.filename.endswith("-any.whl")), None)
    if wheel is None:
        raise TargetError(f"{package} {release.version} has no Linux x86_64 wheel on the index")
    found: list[PluginMethod] = []
    with (reporter or NullReporter()).status(f"reading {wheel.filename}"), RemoteWheel(wheel.url) as whl:
        sources = _Sources(whl)
        for member in sorted(n for n in sources.names if n.endswith(".py")):
            parsed = sources.tree(member)
            if parsed is None:
                continue
            for call in ast.walk(parsed[1]):
                registered = _registration(call)
                if registered is None or not isinstance(call, ast.Call):
                    continue
                method, cls = registered
                module = _import_of(parsed[1], cls, member)
                capability = _capability(sources, method, cls, module)
                found.append(
                    PluginMethod(
                        package,
                        str(release.version),
                        method,
                        capability.min_capability,
                        f"{wheel.filename} {member} l.{call.lineno} register_quantization_config({method!r})"
                        f"({cls}); get_min_capability {capability.member} l.{capability.line}",
                    )
                )
    return tuple(found)


def _registration(node: ast.AST) -> tuple[str, str] | None:
    """``register_quantization_config("gguf")(GGUFConfig)`` -> ("gguf", "GGUFConfig")."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Call) and node.args):
        return None
    inner = node.func
    if _name(inner.func) != "register_quantization_config" or not inner.args:
        return None
    method, cls = inner.args[0], _name(node.args[0])
    if isinstance(method, ast.Constant) and isinstance(method.value, str) and cls:
        return method.value, cls
    return None


def plugin_packages(requires: Sequence[str]) -> list[str]:
    """Plugin packages a vLLM release itself names in Requires-Dist (``vllm-gguf-plugin``)."""
    names = []
    for line in requires:
        name = re.split(r"[\s;<>=!~\[(]", line.strip(), maxsplit=1)[0].lower()
        if name.startswith("vllm-") and name.endswith("-plugin") and name not in names:
            names.append(name)
    return names
