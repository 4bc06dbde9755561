"""Which smoke runs ``envman verify`` makes: cells of family × engine × version × variant.

By default a cell is a family's smoke model on a version the matrix calls known good (the
family's own pins, else the engine's). ``--versions`` sweeps released versions instead
(:mod:`envman.verify.versions`): every selected release from the family's floor up, and with
an explicit SPEC the releases below the floor too (forced: they prove the floor). Cells this
host cannot run (a CUDA variant on a CPU host, macOS-only builds, a release with no wheel
here …) are skipped with the reason; families with no smoke model are listed as skipped too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from packaging.version import Version

from envman.hardware.host import Host
from envman.matrix import combinations
from envman.matrix.schema import Matrix, Model


@dataclass(frozen=True, order=True)
class Case:
    family: str
    model: str
    engine: str
    version: Version
    variant: str
    below_floor: bool = False  # a release older than the family's min_version (expected to fail)
    primary: bool = True  # the family's smoke model; False: another form of it (smoke-gemma3-vision)

    @property
    def row(self) -> str:
        """The family, or for another form of its smoke model the family and the model."""
        return self.family if self.primary else f"{self.family} ({self.model})"

    @property
    def label(self) -> str:
        return f"{self.row} × {self.engine} {self.version} ({self.variant})"

    @property
    def key(self) -> str:
        """The cell's name in the sweep state and the report."""
        extra = "" if self.primary else f"/{self.model}"
        return f"{self.family}/{self.engine}/{self.version}/{self.variant}{extra}"


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: str  # pass | fail | skip
    seconds: float
    detail: str  # the answer, the diagnosis, or why it was skipped
    evidence: str | None = None  # the evidence record's path (ENVMAN_HOME)
    answer: str | None = None  # the generated text (greedy), for parity across engines
    error: str | None = None  # the engine's own words for a failure (a log line)
    lock_digest: str | None = None
    model_digest: str | None = None
    launch_digest: str | None = None  # envman's adapter and launcher sources for the engine
    resumed: bool = False  # taken from the sweep state, not run again
    when: str = ""  # ISO timestamp of the run
    cause: str | None = None  # envman's account of a failure ("the server exited during start-up (…)")

    @property
    def timed_out(self) -> bool:
        """A start that outlasted --timeout: this host's load, not a finding (never proven, never recorded)."""
        return self.status == "fail" and "was not ready after" in self.detail


def smoke_models(matrix: Matrix) -> dict[str, Model]:
    """One smoke model per family: the last listed (smoke-gemma3, after smoke-gemma3-vision)."""
    return {m.family: m for m in matrix.models.values() if m.smoke}


def other_forms(matrix: Matrix, family: str, engine: str) -> list[Model]:
    """The family's other smoke models (the vision-language smoke-gemma3-vision) in a format the engine takes."""
    primary = smoke_models(matrix).get(family)
    formats = set(matrix.engines[engine].formats)
    return [
        m
        for m in matrix.models.values()
        if m.smoke and m.family == family and m is not primary and any(a.format in formats for a in m.artifacts)
    ]


def _with_other_forms(matrix: Matrix, case: Case) -> list[Case]:
    """The case, and one per other form of the family's smoke model (not below the floor: the
    floor is the primary model's to prove)."""
    if case.below_floor:
        return [case]
    others = other_forms(matrix, case.family, case.engine)
    return [case, *(Case(case.family, m.name, case.engine, case.version, case.variant, primary=False) for m in others)]


def _why_not_here(matrix: Matrix, host: Host, engine: str, variant: str) -> str | None:
    var = matrix.engines[engine].variants[variant]
    if var.accelerator is not host.accelerator:
        return f"needs a {var.accelerator.value} host; this one is {host.accelerator.value}"
    if host.os not in var.os or host.arch not in var.arch:
        return f"no {host.os}/{host.arch} build"
    return None


def cases(
    matrix: Matrix,
    host: Host,
    *,
    family: str | None = None,
    engine: str | None = None,
    versions: Mapping[tuple[str, str], Mapping[Version, str | None]] | None = None,
    below_floor: bool = False,
) -> tuple[list[Case], list[Outcome]]:
    """The cells to run, and the skipped ones with their reason.

    ``versions``: per (engine, variant), the releases to sweep, each with why it cannot be
    installed here (None: it can). Without it, the known-good versions. ``below_floor``:
    sweep releases under each family's min_version too.
    """
    if versions is None:
        return _known_good_cases(matrix, host, family=family, engine=engine)
    runnable: list[Case] = []
    skipped: list[Outcome] = []
    smokes = smoke_models(matrix)
    for (name, variant), releases in versions.items():
        for fam in matrix.families.values():
            if family and fam.name != family:
                continue
            support = fam.engines.get(name)
            if support is None or (support.min_version is None and not below_floor):
                continue
            model = smokes.get(fam.name)
            for version, uninstallable in sorted(releases.items()):
                under = support.min_version is None or version < support.min_version
                if under and not below_floor:
                    continue
                case = Case(fam.name, model.name if model else "-", name, version, variant, under)
                why = None
                if model is None:
                    why = f"no smoke model for {fam.name} (smoke models: {', '.join(sorted(smokes))})"
                else:
                    why = _why_not_here(matrix, host, name, variant) or uninstallable
                if why:
                    skipped.append(Outcome(case, "skip", 0.0, why))
                else:
                    runnable.extend(_with_other_forms(matrix, case))
    return runnable, skipped


def sample(runnable: list[Case], skipped: list[Outcome]) -> tuple[list[Case], list[Outcome]]:
    """One cell per engine × variant: its newest known-good version on one family (gemma3 where it can).

    What CI smokes on every change; the full sweep is a maintainer's command.
    """
    chosen: dict[tuple[str, str], Case] = {}
    for case in runnable:
        key = (case.engine, case.variant)
        best = chosen.get(key)
        rank = (case.version, case.family == "gemma3", case.primary, case.family)
        if best is None or rank > (best.version, best.family == "gemma3", best.primary, best.family):
            chosen[key] = case
    picked = sorted(chosen.values())
    engines = {c.engine for c in picked}
    left: dict[tuple[str, str], Outcome] = {}
    for o in skipped:
        if o.case.engine not in engines and not o.detail.startswith("no smoke model"):
            left.setdefault((o.case.engine, o.case.variant), o)
    return picked, sorted(left.values(), key=lambda o: o.case)


def _known_good_cases(
    matrix: Matrix, host: Host, *, family: str | None, engine: str | None
) -> tuple[list[Case], list[Outcome]]:
    runnable: list[Case] = []
    skipped: list[Outcome] = []
    smokes = smoke_models(matrix)
    for combination in combinations.known_good(matrix, families=[family] if family else None, engine=engine):
        eng = matrix.engines[combination.engine]
        for fam in matrix.families.values():
            if family and fam.name != family:
                continue
            support = fam.engines.get(combination.engine)
            if support is None or support.min_version is None or combination.version < support.min_version:
                continue
            if combination.version not in (support.known_good or eng.known_good):
                continue
            model = smokes.get(fam.name)
            case = Case(fam.name, model.name if model else "-", combination.engine, combination.version,
                        combination.variant)  # fmt: skip
            why = None
            if model is None:
                why = f"no smoke model for {fam.name} (smoke models: {', '.join(sorted(smokes))})"
            else:
                why = _why_not_here(matrix, host, combination.engine, combination.variant)
            if why:
                skipped.append(Outcome(case, "skip", 0.0, why))
            else:
                runnable.extend(_with_other_forms(matrix, case))
    return runnable, skipped


# -- parity: the same greedy tokens from different engines -----------------------------


@dataclass(frozen=True)
class Parity:
    family: str
    same: bool
    answers: tuple[tuple[str, str], ...]  # (combination label, answer)

    def describe(self) -> str:
        who = " and ".join(label for label, _ in self.answers)
        if self.same:
            return f"{self.family}: same greedy answer from {who}: {self.answers[0][1]!r}"
        return f"{self.family}: answers differ: " + "; ".join(f"{label}: {text!r}" for label, text in self.answers)


def parity(outcomes: list[Outcome]) -> list[Parity]:
    """Per family, whether every engine that passed gave the same greedy answer (its newest passing version)."""
    found: list[Parity] = []
    for family in sorted({o.case.row for o in outcomes}):  # each form of a smoke model has its own weights
        newest: dict[str, Outcome] = {}
        for o in outcomes:
            if o.case.row == family and o.status == "pass" and o.answer is not None:
                seen = newest.get(o.case.engine)
                if seen is None or o.case.version > seen.case.version:
                    newest[o.case.engine] = o
        if len(newest) < 2:
            continue
        passed = sorted(newest.values(), key=lambda o: o.case)
        answers = tuple((f"{o.case.engine} {o.case.version} ({o.case.variant})", o.answer or "") for o in passed)
        found.append(Parity(family, len({text for _, text in answers}) == 1, answers))
    return found
