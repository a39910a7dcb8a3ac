"""Fixtures for the evaluation tests: the fake provider, a dataset, a prompt with versions."""

from __future__ import annotations

import pytest

from experiments.eval_datasets import dataset_create, prompt_set_dataset
from promptreg.models import MoveVia
from promptreg.services import Actor
from tests.fake_llm import FakeLLM

SERVER = Actor(via=MoveVia.CLI)


@pytest.fixture
def fake_llm(settings):
    with FakeLLM() as fake:
        settings.LLM_BASE_URL = fake.base_url
        settings.LLM_API_KEY = "sk-test"
        settings.LLM_MODEL = "fake-model"
        settings.LLM_BACKOFF = 0.01
        settings.LLM_TIMEOUT = 2.0
        settings.LLM_CONCURRENCY = 4
        yield fake


def make_dataset(name: str = "capitals", answers: list[str] | None = None, scorers: list | None = None, **kwargs):
    """Cases whose query tells the fake provider what to answer (or, when it holds a marker
    such as `[[status:500]]`, how to fail); expected is the right answer."""
    answers = answers if answers is not None else ["Paris", "Rome", "Berlin", "Madrid"]
    expected = ["Paris", "Rome", "Berlin", "Madrid", "Lisbon", "Vienna"]
    cases = [
        {
            "variables": {"query": f"capital {i} {a}" if "[[" in a else f"capital {i} [[answer:{a}]]"},
            "expected": expected[i % len(expected)],
            "tags": ["geo"],
        }
        for i, a in enumerate(answers)
    ]
    return dataset_create(
        name=name, scorers=scorers or ["exact_match", "reference_f1"], cases=cases, actor=SERVER, **kwargs
    )


@pytest.fixture
def dataset(db):
    return make_dataset()


@pytest.fixture
def version(publish, dataset):
    v = publish(name="geo-answer", body="Answer briefly: {{ query }}", prompt_type="extraction")
    prompt_set_dataset(prompt=v.prompt, dataset=dataset, actor=SERVER)
    return v
