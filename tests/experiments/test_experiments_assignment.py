"""Assignment: the team's hash, stable per session, balanced, and monotonic in the traffic fraction."""

from __future__ import annotations

import hashlib

from experiments.models import CONTROL, TREATMENT, Experiment, assign_variant, bucket_of
from experiments.stats import srm_test

SESSIONS = [f"user-{i}" for i in range(100_000)]


def test_bucket_is_exactly_the_designed_formula():
    for session in ("abc", "user-42", "üñî"):
        expected = int(hashlib.sha256(f"{session}:17".encode()).hexdigest(), 16) % 10000 / 10000
        assert bucket_of(session, 17) == expected
    assert assign_variant("abc", 17, bucket_of("abc", 17) + 0.0001) == TREATMENT
    assert assign_variant("abc", 17, bucket_of("abc", 17)) == CONTROL  # treatment only if bucket < fraction


def test_same_session_always_gets_the_same_variant():
    experiment = Experiment(pk=5, traffic_fraction=0.5)
    first = [experiment.assign(s) for s in SESSIONS[:2000]]
    assert first == [experiment.assign(s) for s in SESSIONS[:2000]]
    assert first == [Experiment(pk=5, traffic_fraction=0.5).assign(s) for s in SESSIONS[:2000]]
    # another experiment reshuffles: sessions are not stuck in treatment everywhere
    other = [Experiment(pk=6, traffic_fraction=0.5).assign(s) for s in SESSIONS[:2000]]
    assert 0.4 < sum(a != b for a, b in zip(first, other, strict=False)) / 2000 < 0.6


def test_100k_sessions_pass_srm_at_several_fractions():
    for fraction in (0.05, 0.2, 0.5):
        treated = sum(assign_variant(s, 3, fraction) == TREATMENT for s in SESSIONS)
        assert srm_test([len(SESSIONS) - treated, treated], [1 - fraction, fraction]) > 0.001


def test_raising_the_fraction_keeps_every_treated_session_in_treatment():
    at_5 = {s for s in SESSIONS if assign_variant(s, 9, 0.05) == TREATMENT}
    at_20 = {s for s in SESSIONS if assign_variant(s, 9, 0.20) == TREATMENT}
    assert at_5 and at_5 <= at_20
    assert 0.18 < len(at_20) / len(SESSIONS) < 0.22
