"""``envman verify``: smoke every known-good combination this host can run, report, record.

A case is a family's smoke model on one engine × version × variant the matrix calls known
good (the family's own pins, else the engine's). Cases this host cannot run (a CUDA
variant on a CPU host, macOS-only builds …) are skipped with the reason; families with no
smoke model are listed as skipped too. ``--record`` writes each pass back into matrix.toml
(``[[families.F.engines.E.verified]]``) with tomlkit, keeping comments and layout.
"""

from __future__ import annotations

import datetime as dt
import html
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.version import Version

from envman.errors import EnvmanError
from envman.files import atomic_write
from envman.hardware.host import Host
from envman.matrix import combinations
from envman.matrix.schema import Matrix, Model
from envman.report import NullReporter, Reporter


@dataclass(frozen=True)
class Case:
    family: str
    model: str
    engine: str
    version: Version
    variant: str

    @property
    def label(self) -> str:
        return f"{self.family} × {self.engine} {self.version} ({self.variant})"


@dataclass(frozen=True)
class Outcome:
    case: Case
    status: str  # pass | fail | skip
    seconds: float
    detail: str  # the answer, the diagnosis, or why it was skipped
    evidence: str | None = None
    answer: str | None = None  # the generated text (greedy), for parity across engines


def smoke_models(matrix: Matrix) -> dict[str, Model]:
    return {m.family: m for m in matrix.models.values() if m.smoke}


def cases(
    matrix: Matrix, host: Host, *, family: str | None = None, engine: str | None = None
) -> tuple[list[Case], list[Outcome]]:
    """The cases to run, and the skipped ones with their reason."""
    runnable: list[Case] = []
    skipped: list[Outcome] = []
    smokes = smoke_models(matrix)
    for combination in combinations.known_good(matrix, families=[family] if family else None, engine=engine):
        eng = matrix.engines[combination.engine]
        variant = eng.variants[combination.variant]
        for fam in matrix.families.values():
            if family and fam.name != family:
                continue
            support = fam.engines.get(combination.engine)
            if support is None or support.min_version is None or combination.version < support.min_version:
                continue
            if combination.version not in (support.known_good or eng.known_good):
                continue
            model = smokes.get(fam.name)
            case = Case(fam.name, model.name if model else "-", combination.engine, combination.version, variant.name)
            why = None
            if model is None:
                why = f"no smoke model for {fam.name} (smoke models: {', '.join(sorted(smokes))})"
            elif variant.accelerator is not host.accelerator:
                why = f"needs a {variant.accelerator.value} host; this one is {host.accelerator.value}"
            elif host.os not in variant.os or host.arch not in variant.arch:
                why = f"no {host.os}/{host.arch} build"
            if why:
                skipped.append(Outcome(case, "skip", 0.0, why))
            else:
                runnable.append(case)
    return runnable, skipped


def run_case(matrix: Matrix, host: Host, case: Case, *, timeout: float, reporter: Reporter) -> Outcome:
    from envman.lock.uv import Uv, find_uv
    from envman.plan.request import PlanRequest
    from envman.run.smoke import prepare, smoke

    started = time.monotonic()
    try:
        prepared = prepare(
            matrix,
            host,
            PlanRequest(model=case.model, engine=case.engine, version=str(case.version)),
            uv=Uv(find_uv(), reporter),
            reporter=reporter,
        )
        if prepared.plan.variant.name != case.variant:
            return Outcome(case, "skip", 0.0, f"the planner chose the {prepared.plan.variant.name} variant here")
        result = smoke(matrix, prepared.plan, prepared.runner, timeout, reporter, build_seconds=prepared.build.seconds)
    except EnvmanError as error:
        return Outcome(case, "fail", time.monotonic() - started, error.message)
    if result.passed and result.answer is not None:
        detail = f"{result.answer.completion_tokens} tokens: {result.answer.text!r}"
        return Outcome(case, "pass", result.seconds, detail, str(result.evidence), result.answer.text)
    return Outcome(case, "fail", result.seconds, result.diagnosis or result.error or "failed", str(result.evidence))


def verify(
    matrix: Matrix,
    host: Host,
    *,
    family: str | None = None,
    engine: str | None = None,
    jobs: int = 1,
    timeout: float = 600,
    reporter: Reporter | None = None,
    on_done: Callable[[Outcome], None] | None = None,
) -> list[Outcome]:
    reporter = reporter or NullReporter()
    runnable, skipped = cases(matrix, host, family=family, engine=engine)
    outcomes: list[Outcome] = list(skipped)
    for outcome in skipped:
        if on_done:
            on_done(outcome)
    if runnable:
        from envman.lock.uv import find_uv

        find_uv()  # once, before the threads (the lookup is not thread-safe in the uv package)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_case, matrix, host, c, timeout=timeout, reporter=reporter) for c in runnable]
        for future in futures:
            outcome = future.result()
            outcomes.append(outcome)
            if on_done:
                on_done(outcome)
    order = {c: i for i, c in enumerate(runnable)}
    return sorted(outcomes, key=lambda o: (o.case.family, o.case.engine, o.case.version, order.get(o.case, -1)))


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
    """Per family, whether every engine that passed gave the same greedy answer."""
    found: list[Parity] = []
    for family in sorted({o.case.family for o in outcomes}):
        passed = [o for o in outcomes if o.case.family == family and o.status == "pass" and o.answer is not None]
        if len({o.case.engine for o in passed}) < 2:
            continue
        answers = tuple((f"{o.case.engine} {o.case.version} ({o.case.variant})", o.answer or "") for o in passed)
        found.append(Parity(family, len({text for _, text in answers}) == 1, answers))
    return found


# -- the report -------------------------------------------------------------------------


def report_markdown(outcomes: list[Outcome], host: Host, when: dt.datetime) -> str:
    passed = sum(o.status == "pass" for o in outcomes)
    failed = sum(o.status == "fail" for o in outcomes)
    skipped = sum(o.status == "skip" for o in outcomes)
    lines = [
        "# envman verify",
        "",
        f"{when.isoformat(timespec='seconds')} on {host.describe()} ({host.cpu.model or host.arch}): "
        f"{passed} passed, {failed} failed, {skipped} skipped",
        "",
        "| family | engine | version | variant | result | seconds | detail |",
        "|---|---|---|---|---|---|---|",
    ]
    for o in outcomes:
        detail = o.detail.replace("|", "\\|").replace("\n", " ")
        if o.evidence:
            detail += f" ([evidence]({o.evidence}))"
        c = o.case
        seconds = f"{o.seconds:.1f}" if o.status != "skip" else ""
        lines.append(f"| {c.family} | {c.engine} | {c.version} | {c.variant} | {o.status} | {seconds} | {detail} |")
    same = parity(outcomes)
    if same:
        lines += ["", "## Parity (same prompt, greedy)", ""]
        lines += [f"- {'same' if p.same else 'DIFFERENT'}: {p.describe()}" for p in same]
    return "\n".join(lines) + "\n"


def report_html(outcomes: list[Outcome], host: Host, when: dt.datetime) -> str:
    colours = {"pass": "#d4f4d4", "fail": "#f8d0d0", "skip": "#eeeeee"}
    rows = []
    for o in outcomes:
        c = o.case
        evidence = f' <a href="file://{html.escape(o.evidence)}">evidence</a>' if o.evidence else ""
        seconds = "" if o.status == "skip" else f"{o.seconds:.1f}"
        cells = [c.family, c.engine, str(c.version), c.variant, o.status, seconds]
        rows.append(
            f'<tr style="background:{colours[o.status]}">'
            + "".join(f"<td>{html.escape(cell)}</td>" for cell in cells)
            + f"<td>{html.escape(o.detail)}{evidence}</td></tr>"
        )
    head = (
        "<tr>"
        + "".join(f"<th>{h}</th>" for h in ("family", "engine", "version", "variant", "result", "seconds", "detail"))
        + "</tr>"
    )
    return (
        "<!doctype html><html><head><meta charset='utf-8'><title>envman verify</title></head><body>"
        f"<h1>envman verify</h1><p>{html.escape(when.isoformat(timespec='seconds'))} on "
        f"{html.escape(host.describe())}</p><table border='1' cellspacing='0' cellpadding='4'>{head}"
        + "".join(rows)
        + "</table></body></html>\n"
    )


def write_report(path: Path, outcomes: list[Outcome], host: Host, when: dt.datetime) -> Path:
    text = (
        report_html(outcomes, host, when)
        if path.suffix.lower() in (".html", ".htm")
        else report_markdown(outcomes, host, when)
    )
    return atomic_write(path, text)


# -- recording passes into matrix.toml ------------------------------------------------------


def record(matrix_path: Path, outcomes: list[Outcome], host: Host, when: dt.datetime) -> int:
    """Write each pass as a `verified` entry of its family × engine (replacing an older one)."""
    import tomlkit

    passes = [o for o in outcomes if o.status == "pass"]
    if not passes:
        return 0
    doc = tomlkit.parse(matrix_path.read_text(encoding="utf-8"))
    hardware = f"{host.describe()}; {host.cpu.model}".strip("; ")
    for o in passes:
        c = o.case
        support = doc["families"][c.family]["engines"][c.engine]
        if "verified" not in support:
            support["verified"] = tomlkit.aot()
        entries = support["verified"]
        keep = [e for e in entries if not (e["version"] == str(c.version) and e["variant"] == c.variant)]
        entry = tomlkit.table()
        entry["version"] = str(c.version)
        entry["variant"] = c.variant
        entry["date"] = when.date().isoformat()
        entry["hardware"] = hardware
        entry["evidence"] = f"envman verify: smoke of {c.model} passed ({Path(o.evidence or '').name})"
        fresh = tomlkit.aot()
        for e in keep:
            fresh.append(e)
        fresh.append(entry)
        support["verified"] = fresh
    atomic_write(matrix_path, tomlkit.dumps(doc))
    return len(passes)
