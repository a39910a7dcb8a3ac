"""Scorers: each grades one output and returns a score in [0, 1] under a metric name.

A dataset lists its scorers as specs, the same shape the API takes: a name
(`"exact_match"`) or an object with the name and options
(`{"name": "regex", "pattern": "^\\d+$"}`). Options every scorer takes:
`metric` (the name its score is reported under; defaults to the scorer name),
`required` (the eval gate blocks a version if any case fails it) and
`threshold` (a case passes when its score is at least this; default 0.5).
"""

from __future__ import annotations

import json
import re
import re._parser as re_parser  # private, but the stdlib's own parser: it measures a pattern before we compile it
import string
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import regex as timed_re  # the `regex` package: `search(..., timeout=)` stops a runaway match
from django.conf import settings
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from experiments.models.evaluation import QUALITY_SCORE

# A judge takes (rubric, expected, output) and returns a score in [0, 1].
Judge = Callable[[str, str, str], float]

JUDGE_SYSTEM = (
    "You are grading an answer against a rubric. Reply with a single number from 0 (fails the rubric) "
    "to 10 (fully meets it) and nothing else."
)
# A scorer names the metric it writes: a stricter form of `scores.METRIC_RE` (lowercase, no dots or colons).
SCORER_METRIC_RE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")
FENCE_RE = re.compile(r"^```[a-zA-Z]*\n(.*)\n```$", re.S)
NUMBER_RE = re.compile(r"-?\d+(?:\.\d+)?")
MAX_PATTERN_CHARS = 1000
# `regex` compiles a counted repeat by unrolling it: (a{1000}){1000} takes seconds and (a{65535}){65535} never
# ends, before any timeout applies. 20,000 unrolled items compile in well under 0.1 s.
MAX_PATTERN_SIZE = 20_000
_REPEATS = {re_parser.MAX_REPEAT, re_parser.MIN_REPEAT, re_parser.POSSESSIVE_REPEAT}


class ScorerSpecError(ValueError):
    """Scorer specs that cannot be used; `problems` lists each one."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class JudgeReplyError(ValueError):
    """The judge model answered something that is not a score."""


class ScorerTimeout(Exception):
    """A scorer ran out of its time budget on one output: that case fails with this message, the run goes on."""


@dataclass(frozen=True)
class Scorer:
    name: str
    metric: str
    options: dict[str, Any] = field(default_factory=dict)
    required: bool = False
    threshold: float = 0.5

    def score(self, output: str, expected: str, judge: Judge | None = None) -> float:
        value = float(SCORERS[self.name][0](self, output, expected, judge))
        return min(1.0, max(0.0, value))

    def passes(self, value: float) -> bool:
        return value >= self.threshold


def _fold(text: str, options: dict[str, Any]) -> str:
    return text if options.get("case_sensitive") else text.casefold()


def exact_match(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    return float(_fold(output.strip(), s.options) == _fold(expected.strip(), s.options))


def contains_all(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    text = _fold(output, s.options)
    return float(all(_fold(k, s.options) in text for k in s.options["keywords"]))


def contains_any(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    text = _fold(output, s.options)
    return float(any(_fold(k, s.options) in text for k in s.options["keywords"]))


def _regex(options: dict[str, Any]) -> timed_re.Pattern:
    flags = 0
    for letter in options.get("flags", ""):
        flags |= {"i": timed_re.I, "m": timed_re.M, "s": timed_re.S}[letter]
    return timed_re.compile(options["pattern"], flags)


def regex(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    """Matches within `SCORER_REGEX_TIMEOUT` seconds of CPU (the `regex` package's clock), without holding
    the GIL, so a catastrophic pattern fails its case instead of blocking the worker's other threads."""
    budget = settings.SCORER_REGEX_TIMEOUT
    try:
        return float(_regex(s.options).search(output, timeout=budget, concurrent=True) is not None)
    except TimeoutError:
        raise ScorerTimeout(
            f"the pattern {s.options['pattern'][:60]!r} gave up after {budget:g} s of matching"
        ) from None


def _strip_fence(output: str) -> str:
    """Models often wrap JSON in a ```json fence; grade what is inside it."""
    text = output.strip()
    match = FENCE_RE.match(text)
    return match.group(1) if match else text


def _load_json(output: str) -> tuple[bool, Any]:
    try:
        return True, json.loads(_strip_fence(output))
    except ValueError:
        return False, None


def json_valid(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    return float(_load_json(output)[0])


def json_schema(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    ok, value = _load_json(output)
    return float(ok and Draft202012Validator(s.options["schema"]).is_valid(value))


def length_window(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    size = len(output.split()) if s.options.get("unit") == "words" else len(output.strip())
    low, high = s.options.get("min"), s.options.get("max")
    return float((low is None or size >= low) and (high is None or size <= high))


def _tokens(text: str) -> list[str]:
    """SQuAD-style normalisation: lowercase, no punctuation, no articles."""
    text = text.casefold().translate(str.maketrans("", "", string.punctuation))
    return [t for t in text.split() if t not in {"a", "an", "the"}]


def reference_f1(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    """Token F1 = 2PR / (P + R) over the bag-of-tokens overlap with the reference."""
    out, ref = _tokens(output), _tokens(expected)
    if not out or not ref:
        return float(out == ref)
    overlap = sum((Counter(out) & Counter(ref)).values())
    if overlap == 0:
        return 0.0
    precision, recall = overlap / len(out), overlap / len(ref)
    return 2 * precision * recall / (precision + recall)


def llm_judge(s: Scorer, output: str, expected: str, judge: Judge | None) -> float:
    if judge is None:
        raise JudgeReplyError("llm_judge needs an LLM provider")
    return judge(s.options["rubric"], expected, output)


def judge_messages(rubric: str, expected: str, output: str) -> list[dict[str, str]]:
    reference = f"Reference answer:\n{expected}\n\n" if expected else ""
    return [
        {"role": "system", "content": JUDGE_SYSTEM},
        {"role": "user", "content": f"Rubric:\n{rubric}\n\n{reference}Answer to grade:\n{output}\n\nScore (0-10):"},
    ]


def parse_judge_reply(reply: str) -> float:
    match = NUMBER_RE.search(reply)
    value = float(match.group()) if match else -1.0
    if not 0 <= value <= 10:
        raise JudgeReplyError(f"The judge's reply is not a score from 0 to 10: {reply[:120]!r}")
    return value / 10


def _check_keywords(o: dict[str, Any]) -> str | None:
    words = o.get("keywords")
    if not isinstance(words, list) or not words or not all(isinstance(w, str) and w for w in words):
        return "needs 'keywords': a non-empty list of strings"
    return None


def _unrolled_size(pattern: re_parser.SubPattern | Any) -> int:
    """How many items a pattern is once its counted repeats are unrolled (what compiling it costs)."""
    if not isinstance(pattern, re_parser.SubPattern):
        return sum(_unrolled_size(item) for item in pattern) if isinstance(pattern, (tuple, list)) else 0
    size = 0
    for op, argument in pattern:
        if op in _REPEATS:
            low, high, body = argument
            size += max(1, low if high == re_parser.MAXREPEAT else high) * _unrolled_size(body)
        else:
            size += 1 + _unrolled_size(argument)
    return size


def _check_regex(o: dict[str, Any]) -> str | None:
    if not isinstance(o.get("pattern"), str) or not o["pattern"]:
        return "needs 'pattern': a regular expression"
    if len(o["pattern"]) > MAX_PATTERN_CHARS:
        return f"'pattern' is longer than {MAX_PATTERN_CHARS} characters"
    if not isinstance(o.get("flags", ""), str) or set(o.get("flags", "")) - set("ims"):
        return "'flags' may only contain i, m and s"
    try:
        if _unrolled_size(re_parser.parse(o["pattern"])) > MAX_PATTERN_SIZE:
            return (
                f"'pattern' repeats too much (its counted repeats multiply out to more than {MAX_PATTERN_SIZE:,} items)"
            )
        _regex(o)
    except (re.error, timed_re.error) as exc:
        return f"'pattern' is not a valid regular expression ({exc})"
    return None


def _check_schema(o: dict[str, Any]) -> str | None:
    if not isinstance(o.get("schema"), dict):
        return "needs 'schema': a JSON Schema object"
    try:
        Draft202012Validator.check_schema(o["schema"])
    except SchemaError as exc:
        return f"'schema' is not a valid JSON Schema ({exc.message})"
    return None


def _check_window(o: dict[str, Any]) -> str | None:
    low, high = o.get("min"), o.get("max")
    if low is None and high is None:
        return "needs 'min' and/or 'max'"
    if any(v is not None and (not isinstance(v, int) or isinstance(v, bool) or v < 0) for v in (low, high)):
        return "'min' and 'max' must be whole numbers ≥ 0"
    if low is not None and high is not None and low > high:
        return "'min' is larger than 'max'"
    if o.get("unit", "chars") not in ("chars", "words"):
        return "'unit' is 'chars' or 'words'"
    return None


def _check_rubric(o: dict[str, Any]) -> str | None:
    if not isinstance(o.get("rubric"), str) or not o["rubric"].strip():
        return "needs 'rubric': what a good answer does"
    return None


# name → (score function, option check)
SCORERS: dict[str, tuple[Callable[..., float], Callable[[dict[str, Any]], str | None]]] = {
    "exact_match": (exact_match, lambda o: None),
    "contains_all": (contains_all, _check_keywords),
    "contains_any": (contains_any, _check_keywords),
    "regex": (regex, _check_regex),
    "json_valid": (json_valid, lambda o: None),
    "json_schema": (json_schema, _check_schema),
    "length_window": (length_window, _check_window),
    "reference_f1": (reference_f1, lambda o: None),
    "llm_judge": (llm_judge, _check_rubric),
}
COMMON_OPTIONS = ("name", "metric", "required", "threshold")


def parse_scorers(specs: Any) -> list[Scorer]:
    """Turn specs into scorers, or raise ScorerSpecError listing every problem."""
    if not isinstance(specs, list) or not specs:
        raise ScorerSpecError([f"scorers must be a non-empty list; available: {', '.join(SCORERS)}"])
    problems, scorers = [], []
    for i, spec in enumerate(specs, start=1):
        spec = {"name": spec} if isinstance(spec, str) else spec
        where = f"scorer {i}"
        if not isinstance(spec, dict) or spec.get("name") not in SCORERS:
            got = spec.get("name") if isinstance(spec, dict) else spec
            problems.append(f"{where}: unknown scorer {got!r}; available: {', '.join(SCORERS)}")
            continue
        name = spec["name"]
        metric = spec.get("metric", name)
        threshold = spec.get("threshold", 0.5)
        options = {k: v for k, v in spec.items() if k not in COMMON_OPTIONS}
        problem = SCORERS[name][1](options)
        if problem:
            problems.append(f"{where} ({name}): {problem}")
        elif not isinstance(metric, str) or not SCORER_METRIC_RE.match(metric) or metric == QUALITY_SCORE:
            problems.append(
                f"{where} ({name}): 'metric' must be lowercase letters, digits and '_' (and not '{QUALITY_SCORE}')"
            )
        elif isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0 <= threshold <= 1:
            problems.append(f"{where} ({name}): 'threshold' must be a number from 0 to 1")
        else:
            scorers.append(Scorer(name, metric, options, bool(spec.get("required", False)), float(threshold)))
    metrics = [s.metric for s in scorers]
    for metric in sorted({m for m in metrics if metrics.count(m) > 1}):
        problems.append(f"two scorers report '{metric}': give one of them another 'metric' name")
    if problems:
        raise ScorerSpecError(problems)
    return scorers


def normalise_specs(specs: Any) -> list[dict[str, Any]]:
    """Validated specs in their stored shape: always objects."""
    parse_scorers(specs)
    return [{"name": s} if isinstance(s, str) else dict(s) for s in specs]
