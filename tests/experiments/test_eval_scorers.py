"""Scorers: each returns a score in [0, 1] under its metric name."""

from __future__ import annotations

import pytest

from experiments.scorers import JudgeReplyError, parse_judge_reply, parse_scorers


def score(spec, output, expected=""):
    (scorer,) = parse_scorers([spec])
    return scorer.score(output, expected, judge=lambda rubric, exp, out: 0.7 if "good" in out else 0.1)


@pytest.mark.parametrize(
    "spec, output, expected, want",
    [
        ("exact_match", "  Paris ", "paris", 1.0),
        ({"name": "exact_match", "case_sensitive": True}, "paris", "Paris", 0.0),
        ({"name": "contains_all", "keywords": ["refund", "5 days"]}, "Your REFUND arrives in 5 days", "", 1.0),
        ({"name": "contains_all", "keywords": ["refund", "5 days"]}, "Your refund arrives soon", "", 0.0),
        ({"name": "contains_any", "keywords": ["sorry", "apolog"]}, "We apologise", "", 1.0),
        ({"name": "contains_any", "keywords": ["sorry"]}, "Fine", "", 0.0),
        ({"name": "regex", "pattern": r"^\d{4}-\d{2}$"}, "2024-05", "", 1.0),
        ({"name": "regex", "pattern": "^abc", "flags": "i"}, "ABCdef", "", 1.0),
        ("json_valid", '```json\n{"a": 1}\n```', "", 1.0),
        ("json_valid", "{'a': 1}", "", 0.0),
        ({"name": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '{"a": 1}', "", 1.0),
        ({"name": "json_schema", "schema": {"type": "object", "required": ["a"]}}, '{"b": 1}', "", 0.0),
        ({"name": "length_window", "max": 5}, "short", "", 1.0),
        ({"name": "length_window", "min": 2, "max": 3, "unit": "words"}, "far too many words here", "", 0.0),
        ("reference_f1", "The cat sat", "a cat sat down", 2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3)),
        ("reference_f1", "", "", 1.0),
        ("reference_f1", "dog", "cat", 0.0),
        ({"name": "llm_judge", "rubric": "polite"}, "a good answer", "", 0.7),
    ],
)
def test_scores(spec, output, expected, want):
    assert score(spec, output, expected) == pytest.approx(want)


def test_metric_names_thresholds_and_required():
    scorers = parse_scorers(
        ["exact_match", {"name": "reference_f1", "metric": "f1", "required": True, "threshold": 0.8}]
    )
    assert [s.metric for s in scorers] == ["exact_match", "f1"]
    assert scorers[1].required and scorers[1].passes(0.8) and not scorers[1].passes(0.79)
    assert not scorers[0].required and scorers[0].passes(1.0) and not scorers[0].passes(0.0)


def test_judge_reply_parsing():
    assert parse_judge_reply("8") == 0.8
    assert parse_judge_reply("Score: 10/10") == 1.0
    for bad in ("excellent", "42"):
        with pytest.raises(JudgeReplyError):
            parse_judge_reply(bad)
