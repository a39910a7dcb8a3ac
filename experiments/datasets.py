"""Reading and writing dataset files: CSV and JSONL, validated row by row.

CSV: a header row; the columns `expected` and `tags` (comma-separated) are
special, every other column is a variable. JSONL: one object per line with
`variables` (an object), optional `expected` (text) and `tags` (list of text).
"""

from __future__ import annotations

import csv
import io
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from promptreg.templating import case_value_problem

MAX_CASES = 10_000
VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED_COLUMNS = ("expected", "tags")


@dataclass
class CaseData:
    variables: dict[str, Any]
    expected: str = ""
    tags: list[str] = field(default_factory=list)


class RowErrors(ValueError):
    """Every bad row, as (line, reason); nothing is imported when there is one."""

    def __init__(self, problems: list[tuple[int, str]]):
        self.problems = problems
        super().__init__("; ".join(f"line {line}: {reason}" for line, reason in problems))


def variables_problem(variables: Any) -> str | None:
    """What is wrong with a case's (or a production sample's) variables: a non-empty object of names made of
    letters, digits and underscores, whose values are text, numbers, true/false or a placeholder's messages."""
    if not isinstance(variables, dict) or not variables:
        return "'variables' must be a non-empty object of variable values"
    bad = next((name for name in variables if not VARIABLE_NAME_RE.match(name)), None)
    if bad is not None:
        return f"variable name {bad!r} is not letters, digits and underscores"
    return next(filter(None, (case_value_problem(n, v) for n, v in variables.items())), None)


def case_problem(row: Any) -> tuple[CaseData | None, str | None]:
    """Validate one case in its JSON shape (API and JSONL); return it or the reason it is bad."""
    if not isinstance(row, dict):
        return None, "a case must be a JSON object with 'variables'"
    unknown = sorted(set(row) - {"variables", "expected", "tags"})
    if unknown:
        return (
            None,
            f"unknown field{'s' if len(unknown) > 1 else ''} {', '.join(unknown)} (use variables, expected, tags)",
        )
    variables = row.get("variables")
    problem = variables_problem(variables)
    if problem:
        return None, problem
    assert isinstance(variables, dict), "variables_problem accepts only an object"
    expected = row.get("expected")
    if expected is None:
        expected = ""
    if not isinstance(expected, str):
        return None, "'expected' must be text"
    tags = row.get("tags") or []
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        return None, "'tags' must be a list of text"
    return CaseData(variables, expected, _clean_tags(tags)), None


def _clean_tags(tags: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(t.strip() for t in tags if t.strip()))


def validate_cases(rows: Any) -> list[CaseData]:
    """Cases from the API: a list of objects; raises RowErrors numbered from 1."""
    if not isinstance(rows, list):
        raise RowErrors([(0, "cases must be a list")])
    return _collect(enumerate(rows, start=1))


def _collect(numbered: Iterable[tuple[int, Any]]) -> list[CaseData]:
    cases: list[CaseData] = []
    problems: list[tuple[int, str]] = []
    for line, row in numbered:
        if isinstance(row, str):  # already a reason (unparseable line)
            problems.append((line, row))
            continue
        case, problem = case_problem(row)
        if problem:
            problems.append((line, problem))
        else:
            assert case is not None, "case_problem returns a case or a problem"
            cases.append(case)
    if len(cases) + len(problems) > MAX_CASES:
        problems.append((0, f"a dataset file holds at most {MAX_CASES:,} cases"))
    if problems:
        raise RowErrors(problems)
    return cases


def parse_upload(filename: str, data: bytes) -> list[CaseData]:
    """Parse a .csv or .jsonl upload; raises RowErrors listing every bad row."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise RowErrors([(text_line(data, exc.start), "the file is not UTF-8 text")]) from None
    name = filename.lower()
    if name.endswith((".jsonl", ".ndjson", ".json")):
        cases = _collect(_jsonl_rows(text))
    elif name.endswith(".csv"):
        cases = _collect(_csv_rows(text))
    else:
        raise RowErrors([(0, "upload a .csv or .jsonl file")])
    if not cases:
        raise RowErrors([(0, "the file has no cases")])
    return cases


def text_line(data: bytes, index: int) -> int:
    return data.count(b"\n", 0, index) + 1


def _jsonl_rows(text: str) -> Iterable[tuple[int, Any]]:
    for line, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip():
            continue
        try:
            yield line, json.loads(raw)
        except json.JSONDecodeError as exc:
            yield line, f"not valid JSON ({exc.msg} at column {exc.colno})"


def _csv_rows(text: str) -> Iterable[tuple[int, Any]]:
    reader = csv.reader(io.StringIO(text, newline=""))
    try:
        header = next(reader)
    except (StopIteration, csv.Error):
        yield 1, "the header row is missing"
        return
    header = [h.strip() for h in header]
    names = [h for h in header if h not in RESERVED_COLUMNS]
    bad = [h for h in names if not VARIABLE_NAME_RE.match(h)]
    if bad or not names or len(set(header)) != len(header):
        why = (
            f"column {bad[0]!r} is not a variable name"
            if bad
            else "no variable columns"
            if not names
            else "a column name repeats"
        )
        yield 1, f"header: {why} (columns are variables, plus optional 'expected' and 'tags')"
        return
    line = 1
    while True:
        try:
            row = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            yield reader.line_num, f"unreadable CSV ({exc})"
            return
        line = reader.line_num
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            yield line, f"has {len(row)} fields, the header has {len(header)}"
            continue
        cells = dict(zip(header, row, strict=False))
        tags = [t for t in cells.pop("tags", "").split(",")]
        yield (
            line,
            {
                "variables": {k: cells[k] for k in names},
                "expected": cells.get("expected", ""),
                "tags": _clean_tags(tags),
            },
        )


def export_jsonl(cases: Iterable[Any]) -> str:
    lines = [
        json.dumps({"variables": c.variables, "expected": c.expected, "tags": c.tags}, ensure_ascii=False)
        for c in cases
    ]
    return "\n".join(lines) + ("\n" if lines else "")


def export_csv(cases: list[Any]) -> str:
    """Variables become columns; values that are not text (e.g. message lists) are written as JSON."""
    names = list(dict.fromkeys(name for c in cases for name in c.variables))
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow([*names, "expected", "tags"])
    for c in cases:
        values = [c.variables.get(n, "") for n in names]
        writer.writerow([v if isinstance(v, str) else json.dumps(v) for v in values] + [c.expected, ",".join(c.tags)])
    return out.getvalue()
