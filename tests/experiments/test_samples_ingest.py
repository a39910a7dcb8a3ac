"""Samples posted with scores: the per-prompt sampling rate (checked against binomial bounds), retries keep the same
samples, and a bad or oversized sample is a 400 that stores nothing."""

from __future__ import annotations

import json
import uuid

import pytest
from scipy.stats import binom, binomtest

from experiments.models import Sample, SamplingPolicy, Score
from experiments.samples import sample_kept

URL = "/api/v1/scores"


@pytest.fixture
def writer(api_key_factory):
    return api_key_factory("write")[1]


@pytest.fixture
def prompts(publish):
    v1 = publish()
    SamplingPolicy.objects.create(prompt=v1.prompt, rate=0.2)
    other = publish(name="billing-system")
    return v1, other


def post(client, secret, scores):
    return client.post(
        URL, json.dumps({"scores": scores}), content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {secret}"
    )


def item(prompt="support-system", **kw):
    base = {
        "id": str(uuid.uuid4()),
        "prompt": prompt,
        "version": 1,
        "metrics": {"quality_score": 0.5},
        "sample": {"variables": {"name": "Ann"}, "output": "Hello Ann"},
    }
    return {**base, **kw}


def test_the_sampling_rate_is_honoured_within_binomial_bounds(client, writer, prompts):
    n, rate = 5000, 0.2
    for _ in range(n // 1000):
        batch = [item() for _ in range(900)] + [item(prompt="billing-system") for _ in range(100)]
        assert post(client, writer, batch).status_code == 200
    kept = Sample.objects.filter(prompt__name="support-system").count()
    total = n * 9 // 10
    # Two-sided 99.9% acceptance region of Binomial(4500, 0.2): a correct sampler fails here once in a thousand runs.
    assert binom.ppf(0.0005, total, rate) <= kept <= binom.ppf(0.9995, total, rate)
    assert binomtest(kept, total, rate).pvalue > 0.001
    assert Sample.objects.filter(prompt__name="billing-system").count() == n // 10  # no policy: the default, 1.0
    assert Score.objects.count() == n  # scores are all stored whatever the sampling


def test_a_rate_of_zero_keeps_none_and_the_setting_is_the_default(client, writer, prompts, settings):
    v1, other = prompts
    SamplingPolicy.objects.filter(prompt=v1.prompt).update(rate=0.0)
    settings.SAMPLE_RATE = 0.0
    assert post(client, writer, [item(), item(prompt="billing-system")]).status_code == 200
    assert not Sample.objects.exists() and Score.objects.count() == 2


def test_a_kept_sample_is_stored_with_its_score_and_a_retry_keeps_the_same(client, writer, prompts):
    batch = [item(timestamp="2026-11-24T18:00:00Z") for _ in range(200)]
    assert post(client, writer, batch).status_code == 200
    kept = set(Sample.objects.values_list("client_id", flat=True))
    assert kept == {i["id"] for i in batch if sample_kept(i["id"], 0.2)} and kept
    sample = Sample.objects.select_related("version").get(client_id=sorted(kept)[0])
    assert (sample.version.number, sample.variables, sample.output, sample.timestamp.isoformat()) == (
        1,
        {"name": "Ann"},
        "Hello Ann",
        "2026-11-24T18:00:00+00:00",
    )
    response = post(client, writer, batch)  # a retry: nothing new, the same samples
    assert response.json()["values_duplicate"] == 200
    assert set(Sample.objects.values_list("client_id", flat=True)) == kept


@pytest.mark.parametrize(
    ("sample", "code", "message"),
    [
        ("text", "invalid_sample", "must be an object with 'variables' and 'output'"),
        ({"variables": {"name": "Ann"}}, "invalid_sample", "'output' must be text"),
        ({"variables": {}, "output": "x"}, "invalid_sample", "'variables' must be a non-empty object"),
        ({"variables": {"bad name": 1}, "output": "x"}, "invalid_sample", "variable name 'bad name' is not"),
        (
            {"variables": {"name": {"x": [1, 2]}}, "output": "x"},
            "invalid_sample",
            "variable 'name' must be text, a number or true/false, not an object",
        ),
        ({"variables": {"name": [1]}, "output": "x"}, "invalid_sample", "placeholder 'name' takes a list of messages"),
        ({"variables": {"name": "Ann"}, "output": "x", "extra": 1}, "invalid_sample", "must be an object with"),
        ({"variables": {"name": "Ann"}, "output": "é" * 17_000}, "sample_too_large", "at most 32,768"),
    ],
)
def test_a_bad_sample_is_a_400_and_nothing_is_stored(client, writer, prompts, sample, code, message):
    response = post(client, writer, [item(), item(sample=sample)])
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == code and error["index"] == 1
    assert error["message"].startswith("scores[1].sample: ") and message in error["message"]
    assert not Score.objects.exists() and not Sample.objects.exists()


def test_kept_is_uniform_over_ids():
    """The hash decision alone, on a million ids: the kept share is Binomial(n, rate) (and a rate of 1 keeps all)."""
    n, rate = 1_000_000, 0.1
    kept = sum(sample_kept(f"req-{i}", rate) for i in range(n))
    assert binomtest(kept, n, rate).pvalue > 0.001
    assert all(sample_kept(f"req-{i}", 1.0) for i in range(100))


def test_a_null_sample_is_no_sample(client, writer, prompts):
    response = post(client, writer, [item(sample=None), item(prompt="billing-system")])
    assert response.status_code == 200 and Score.objects.count() == 2
    assert list(Sample.objects.values_list("prompt__name", flat=True)) == ["billing-system"]
