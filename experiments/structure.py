"""Template structure checks, no LLM needed: compile a version against every case of a dataset.

Flags cases that cannot fill the template (missing substitutions), that fill it
with empty values, and whose compiled length is an outlier (outside Tukey's
far-out fences, Q1 − 3·IQR and Q3 + 3·IQR); and diffs the compiled outputs of
two versions over a sample of cases.
"""

from __future__ import annotations

import difflib
import random
import statistics
from dataclasses import dataclass, field
from typing import Any

from experiments.models.evaluation import Case
from promptreg.models import PromptVersion
from promptreg.templating import CompileError

OUTLIER_K = 3.0


@dataclass
class CaseCheck:
    case: Case
    length: int | None = None
    missing: list[str] = field(default_factory=list)
    empty: list[str] = field(default_factory=list)
    unused: list[str] = field(default_factory=list)
    error: str = ""
    outlier: str = ""

    @property
    def ok(self) -> bool:
        return not (self.missing or self.empty or self.error or self.outlier)


@dataclass
class StructureReport:
    version: PromptVersion
    checks: list[CaseCheck]
    fences: tuple[float, float] | None

    @property
    def problems(self) -> list[CaseCheck]:
        return [c for c in self.checks if not c.ok]


def as_text(compiled: str | list[dict[str, Any]]) -> str:
    if isinstance(compiled, str):
        return compiled
    return "\n\n".join(f"[{m['role']}]\n{m['content']}" for m in compiled)


def _is_empty(value: Any) -> bool:
    return value is None or (
        isinstance(value, (str, list, dict)) and not (value.strip() if isinstance(value, str) else value)
    )


def check_case(version: PromptVersion, case: Case) -> CaseCheck:
    check = CaseCheck(case)
    try:
        compiled = version.compile(**case.variables)
    except CompileError as exc:
        check.missing, check.error = exc.missing, "" if exc.missing else str(exc)
        return check
    check.length = len(as_text(compiled.prompt))
    check.unused = compiled.unused
    check.empty = [name for name in version.resolved_template.variables if _is_empty(case.variables.get(name))]
    return check


def structure_check(version: PromptVersion, cases: list[Case]) -> StructureReport:
    checks = [check_case(version, case) for case in cases]
    lengths = sorted(c.length for c in checks if c.length is not None)
    fences = None
    if len(lengths) >= 4:
        q1, _, q3 = statistics.quantiles(lengths, n=4)
        fences = (q1 - OUTLIER_K * (q3 - q1), q3 + OUTLIER_K * (q3 - q1))
        for check in checks:
            if check.length is not None and not fences[0] <= check.length <= fences[1]:
                side = "long" if check.length > fences[1] else "short"
                check.outlier = f"unusually {side}: {check.length:,} characters (typical {int(q1):,}–{int(q3):,})"
    return StructureReport(version, checks, fences)


@dataclass
class CompiledDiff:
    case: Case
    lines: list[str]
    error: str = ""

    @property
    def changed(self) -> bool:
        return bool(self.lines or self.error)


def _compiled(version: PromptVersion, case: Case) -> tuple[str, str]:
    try:
        return as_text(version.compile(**case.variables).prompt), ""
    except CompileError as exc:
        return "", f"v{version.number}: {exc}"


def compiled_diff(
    old: PromptVersion, new: PromptVersion, cases: list[Case], sample: int = 20, seed: int = 0
) -> list[CompiledDiff]:
    """Unified diffs of two versions' compiled prompts over a reproducible sample of cases."""
    chosen = (
        cases if len(cases) <= sample else sorted(random.Random(seed).sample(cases, sample), key=lambda c: c.position)
    )
    diffs = []
    for case in chosen:
        (a, err_a), (b, err_b) = _compiled(old, case), _compiled(new, case)
        lines = list(
            difflib.unified_diff(a.splitlines(), b.splitlines(), f"v{old.number}", f"v{new.number}", lineterm="")
        )
        diffs.append(CompiledDiff(case, lines, "; ".join(e for e in (err_a, err_b) if e)))
    return diffs
