"""The eval gate on promotion, the score diff against production, and the automatic run on submission."""

from __future__ import annotations

import pytest

from experiments.eval_datasets import prompt_set_dataset
from experiments.evaluation import evaluation_compare_start, evaluation_start
from experiments.gates import compare, version_comparison
from experiments.models import EvalRun, RunState
from experiments.runner import run_execute
from promptreg.exceptions import GateBlocked
from promptreg.files import export_dir
from promptreg.services import label_move, version_submit_for_review
from tests.experiments.conftest import SERVER, make_dataset


def evaluate(version, dataset):
    run = evaluation_start(version=version, dataset=dataset, actor=SERVER)
    assert run_execute(run.pk) == RunState.DONE
    return run


def promote(version):
    return label_move(
        name=version.prompt.name, label="production", version=version.number, actor=SERVER, reason="ship it"
    )


@pytest.fixture
def live(fake_llm, version, dataset):
    """v1 evaluated and in production."""
    evaluate(version, dataset)
    promote(version)
    return version


def test_no_dataset_blocks(fake_llm, publish):
    v = publish(name="geo-answer", body="{{ query }}", prompt_type="extraction")
    with pytest.raises(GateBlocked, match="no evaluation dataset is set for this prompt"):
        promote(v)


def test_no_finished_run_blocks(live, publish):
    v2 = publish(name="geo-answer", body="Reply: {{ query }}")
    with pytest.raises(GateBlocked, match="v2 has no finished evaluation on 'capitals'"):
        promote(v2)


def test_significant_regression_blocks_and_names_the_numbers(live, publish, dataset):
    v2 = publish(name="geo-answer", body="{{ query }} [[answer:Lyon]]")
    run = evaluate(v2, dataset)
    with pytest.raises(GateBlocked) as exc:
        promote(v2)
    assert "quality_score regressed against production v1 (1.000 → 0.000, p = 0)" in exc.value.message
    comparison = version_comparison(v2)
    assert comparison.candidate == run and comparison.primary["regressed"]
    assert [c.case.position for c in comparison.regressed_cases] == [1, 2, 3, 4]


def test_no_regression_passes(live, publish, dataset):
    v2 = publish(name="geo-answer", body="Reply: {{ query }}")
    evaluate(v2, dataset)
    move = promote(v2)
    assert move.to_version == v2


def test_a_few_regressed_cases_are_listed_first_even_when_not_significant(fake_llm, publish):
    ds = make_dataset("big", answers=["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna"] * 3)
    v1 = publish(name="geo-answer", body="{{ query }}", prompt_type="extraction")
    prompt_set_dataset(prompt=v1.prompt, dataset=ds, actor=SERVER)
    base = evaluate(v1, ds)
    promote(v1)
    # v2 answers one case wrongly: a regression of one case out of 18 is not significant.
    case = ds.active_cases()[4]
    case.variables = {"query": case.variables["query"] + " [[answer:Porto]]"}
    case.save()
    v2 = publish(name="geo-answer", body="Reply: {{ query }}")
    cand = evaluate(v2, ds)
    comparison = compare(cand, base)
    assert [c.case.position for c in comparison.regressed_cases] == [5]
    assert comparison.cases[0].case.position == 5 and comparison.cases[0].diff == -1.0
    assert comparison.primary["p_value"] > 0.05 and not comparison.primary["regressed"]
    assert promote(v2).to_version == v2


def test_case_level_failure_of_a_required_scorer_blocks(fake_llm, publish):
    ds = make_dataset(
        "strict",
        answers=["Paris", "Rome"],
        scorers=["exact_match", {"name": "length_window", "max": 4, "required": True}],
    )
    v1 = publish(name="geo-answer", body="{{ query }}", prompt_type="extraction")
    prompt_set_dataset(prompt=v1.prompt, dataset=ds, actor=SERVER)
    evaluate(v1, ds)
    with pytest.raises(GateBlocked, match=r"required scorer 'length_window' failed on 1 case \(case 1\)"):
        promote(v1)


def test_compare_start_reuses_a_fresh_production_run(live, publish, dataset):
    v2 = publish(name="geo-answer", body="Reply: {{ query }}")
    run = evaluation_compare_start(version=v2, actor=SERVER)
    assert run.baseline.version == live and run.baseline.state == RunState.DONE
    # After the dataset changes, production is run again.
    make_case = dataset.active_cases().first()
    from experiments.eval_datasets import case_save

    case_save(dataset=dataset, case=make_case, actor=SERVER, variables=make_case.variables, expected="Paris!")
    run2 = evaluation_compare_start(version=v2, actor=SERVER)
    assert run2.baseline != run.baseline and run2.baseline.state == RunState.QUEUED


def test_submitting_for_review_queues_the_comparison(live, publish, django_capture_on_commit_callbacks):
    v2 = publish(name="geo-answer", body="Reply: {{ query }}")
    with django_capture_on_commit_callbacks(execute=True):
        version_submit_for_review(version=v2, actor=SERVER)
    run = EvalRun.objects.get(version=v2)
    assert run.state == RunState.QUEUED and run.baseline.version == live and run.created_via == "auto"


def test_submitting_with_cases_that_cannot_compile_records_a_failed_run(
    live, publish, django_capture_on_commit_callbacks
):
    v2 = publish(name="geo-answer", body="{{ query }} in {{ city }}")
    with django_capture_on_commit_callbacks(execute=True):
        version_submit_for_review(version=v2, actor=SERVER)
    run = EvalRun.objects.get(version=v2)
    assert run.state == RunState.FAILED and "case 1 lacks city" in run.error and run.results.count() == 0


def test_exported_files_carry_the_latest_finished_runs_quality_score(live, publish, tmp_path):
    """EVAL_SCORE: v1's run on the gate dataset; v2, not evaluated yet, and a prompt without a dataset stay empty."""
    publish(name="no-dataset", body="Hi")
    export_dir(tmp_path)
    score = EvalRun.objects.get(version=live, state=RunState.DONE).metrics["quality_score"]["mean"]
    assert 0 < score <= 1
    assert f"\nEVAL_SCORE: {round(score, 4)}\n" in (tmp_path / "geo-answer.txt").read_text()
    assert "\nEVAL_SCORE:\n" in (tmp_path / "no-dataset.txt").read_text()
    publish(name="geo-answer", body="Answer in one word: {{ query }}", prompt_type="extraction")
    export_dir(tmp_path)
    assert "\nEVAL_SCORE:\n" in (tmp_path / "geo-answer.txt").read_text()
