"""Datasets: uploads validated row by row (all or nothing), export round trip, history, services' permission checks."""

from __future__ import annotations

import json

import pytest

from experiments.datasets import RowErrors, export_csv, export_jsonl, parse_upload
from experiments.eval_datasets import case_remove, case_save, dataset_create, dataset_import, dataset_update
from experiments.models import Case, Dataset
from promptreg.exceptions import Forbidden, InvalidInput
from promptreg.models import MoveVia
from promptreg.services import Actor
from tests.experiments.conftest import SERVER


def test_csv_upload_becomes_cases():
    data = (
        b'query,lang,expected,tags\nwhere is my refund?,en,Refunds take 5 days,"billing, refund"\n"multi\nline",fr,,\n'
    )
    cases = parse_upload("cases.csv", data)
    assert [(c.variables, c.expected, c.tags) for c in cases] == [
        ({"query": "where is my refund?", "lang": "en"}, "Refunds take 5 days", ["billing", "refund"]),
        ({"query": "multi\nline", "lang": "fr"}, "", []),
    ]


def test_every_bad_jsonl_row_is_listed_with_its_line_and_reason():
    lines = [
        '{"variables": {"query": "ok"}, "expected": "fine"}',
        "{not json",
        "",
        '{"variables": {}}',
        '{"variables": {"query": "x"}, "expected": 3}',
        '{"variables": {"query": "x"}, "tags": "a"}',
        '{"variables": {"query": "x"}, "colour": "red"}',
        '["a list"]',
        '{"variables": {"bad name": "x"}}',
        '{"variables": {"query": null}}',
        '{"variables": {"query": {"x": [1, 2]}}}',
        '{"variables": {"query": 3, "flag": true, "chat": [{"role": "user", "content": "hi"}]}}',
    ]
    with pytest.raises(RowErrors) as exc:
        parse_upload("cases.jsonl", "\n".join(lines).encode())
    assert [line for line, _ in exc.value.problems] == [2, 4, 5, 6, 7, 8, 9, 10, 11]  # 12: numbers, booleans, messages
    reasons = dict(exc.value.problems)
    assert "not valid JSON" in reasons[2]
    assert "'variables' must be a non-empty object" in reasons[4]
    assert "'expected' must be text" in reasons[5]
    assert "'tags' must be a list of text" in reasons[6]
    assert "unknown field colour" in reasons[7]
    assert "variable name 'bad name'" in reasons[9]
    # The rule runs and production samples share: text, a number or true/false (or a placeholder's messages).
    assert reasons[10] == "variable 'query' must be text, a number or true/false, not null"
    assert reasons[11] == "variable 'query' must be text, a number or true/false, not an object"


def test_bad_csv_rows_and_files():
    with pytest.raises(RowErrors) as exc:
        parse_upload("c.csv", b"query,expected\nok,1\nonly-one-field,2,extra\n,\nfine,3\n")
    assert exc.value.problems == [(3, "has 3 fields, the header has 2")]
    for name, data, reason in [
        ("c.csv", b"", "header row is missing"),
        ("c.csv", b"bad col,expected\nx,y\n", "column 'bad col' is not a variable name"),
        ("c.csv", b"expected,tags\nx,y\n", "no variable columns"),
        ("c.csv", b"query\n", "the file has no cases"),
        ("c.txt", b"query\nx\n", "upload a .csv or .jsonl file"),
        ("c.csv", b"query\n\xff\xfe\n", "not UTF-8"),
    ]:
        with pytest.raises(RowErrors) as exc:
            parse_upload(name, data)
        assert reason in str(exc.value), name


def test_import_is_all_or_nothing(dataset):
    before = list(dataset.active_cases().values_list("pk", flat=True))
    with pytest.raises(InvalidInput) as exc:
        dataset_create(
            name="broken",
            scorers=["exact_match"],
            cases=[{"variables": {"q": "a"}}, {"variables": "nope"}],
            actor=SERVER,
        )
    assert exc.value.details["rows"] == [
        {"line": 2, "reason": "'variables' must be a non-empty object of variable values"}
    ]
    assert not Dataset.objects.filter(name="broken").exists()
    assert list(dataset.active_cases().values_list("pk", flat=True)) == before


def test_export_round_trips_through_import(dataset):
    cases = list(dataset.active_cases())
    jsonl = export_jsonl(cases)
    assert [json.loads(line) for line in jsonl.splitlines()][0] == {
        "variables": {"query": "capital 0 [[answer:Paris]]"},
        "expected": "Paris",
        "tags": ["geo"],
    }
    for name, text in (("x.jsonl", jsonl), ("x.csv", export_csv(cases))):
        again = parse_upload(name, text.encode())
        assert [(c.variables, c.expected, c.tags) for c in again] == [(c.variables, c.expected, c.tags) for c in cases]


def test_replace_import_hides_old_cases_but_keeps_them(dataset):
    rows = parse_upload("x.jsonl", b'{"variables": {"query": "new"}}\n')
    dataset_import(dataset=dataset, actor=SERVER, rows=rows, replace=True)
    assert [c.variables for c in dataset.active_cases()] == [{"query": "new"}]
    assert Case.objects.filter(dataset=dataset).count() == 5


def test_scorer_specs_are_validated(db):
    with pytest.raises(InvalidInput) as exc:
        dataset_create(
            name="x",
            scorers=[
                "exact_match",
                "bleu",
                {"name": "regex", "pattern": "("},
                {"name": "contains_all"},
                {"name": "json_schema", "schema": {"type": 3}},
                {"name": "length_window", "min": 5, "max": 2},
                {"name": "exact_match"},
            ],
            actor=SERVER,
        )
    problems = exc.value.details["problems"]
    assert any("unknown scorer 'bleu'" in p for p in problems)
    assert any("not a valid regular expression" in p for p in problems)
    assert any("needs 'keywords'" in p for p in problems)
    assert any("not a valid JSON Schema" in p for p in problems)
    assert any("'min' is larger than 'max'" in p for p in problems)
    assert any("two scorers report 'exact_match'" in p for p in problems)
    with pytest.raises(InvalidInput, match="primary metric 'f1'"):
        dataset_create(name="x", scorers=["exact_match"], primary_metric="f1", actor=SERVER)
    assert not Dataset.objects.exists()


def test_history_records_dataset_and_case_changes(dataset, author):
    actor = Actor(via=MoveVia.BUTTON, user=author)
    case = dataset.active_cases().first()
    case_save(dataset=dataset, case=case, actor=actor, variables={"query": "changed"}, expected="X")
    case_remove(case=dataset.active_cases().last(), actor=actor)
    dataset_update(dataset=dataset, actor=actor, name="capitals-v2", scorers=["exact_match"])
    case.refresh_from_db()
    assert case.history.count() == 2 and case.history.first().history_change_reason == "edited by alice"
    assert case.history.first().prev_record.variables == {"query": "capital 0 [[answer:Paris]]"}
    assert dataset.history.first().name == "capitals-v2" and dataset.history.filter(name="capitals").exists()
    assert dataset.active_cases().count() == 3


def test_only_authors_change_datasets(dataset, outsider):
    actor = Actor(via=MoveVia.BUTTON, user=outsider)
    with pytest.raises(Forbidden):
        dataset_create(name="x", scorers=["exact_match"], actor=actor)
    with pytest.raises(Forbidden):
        case_save(dataset=dataset, actor=actor, variables={"q": "x"})
    assert Dataset.objects.count() == 1 and dataset.active_cases().count() == 4
