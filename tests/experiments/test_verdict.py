"""The experiment's verdict in words: one sentence per decision, guardrails in words, p-values and units."""

from __future__ import annotations

from experiments import decision as decisions
from experiments import stats
from experiments.verdict import guardrail_rows, headline, metric_name, metric_unit, p_value, signed

S = stats.SampleStats


def analysis(control: tuple[float, float, int], treatment: tuple[float, float, int], guardrails=(), **design) -> dict:
    """`decisions.analyse` on normal data summarised as (mean, sd, n) per variant;
    guardrail metrics as {metric: (c, t)}."""

    def sample(mean: float, sd: float, n: int) -> S:
        return S(n, mean * n, (sd * sd * (n - 1) + mean * mean * n))

    data = {"quality_score": (sample(*control), sample(*treatment))}
    rails = []
    for metric, margin, c, t in guardrails:
        data[metric] = (sample(*c), sample(*t))
        rails.append(decisions.Guardrail(metric, margin, higher_is_better=False))
    design = decisions.Design(
        primary_metric="quality_score", guardrails=tuple(rails), sequential=False, min_samples_per_variant=50, **design
    )
    return decisions.analyse(design, data).to_dict()


LATENCY_HELD = ("latency_ms", 50, (400, 40, 2000), (401, 40, 2000))


def test_a_win_reads_as_ship_with_the_lift_its_interval_and_the_guardrail():
    result = analysis((0.70, 0.1, 2000), (0.73, 0.1, 2000), [LATENCY_HELD])
    assert result["decision"] == decisions.SHIP
    lo, hi = result["primary"]["relative_ci"]
    text = headline(result, treatment=8, control=5, alpha=0.05)
    assert (
        text == f"Ship v8: quality +4.3% (95% CI +{lo * 100:.1f}% to +{hi * 100:.1f}%); latency no worse than +50 ms."
    )
    assert headline(result, treatment=8, control=5, alpha=0.05, canary=True).startswith("Promote v8: quality +4.3%")
    (row,) = guardrail_rows(result)
    assert row["state"] == "held" and row["rule"] == "latency no worse than +50 ms"
    assert row["sentence"].startswith("Held: latency changed by +1 ms; at worst +") and row["sentence"].endswith(
        "within the +50 ms allowed."
    )
    assert row["p_value"] == "< 0.0001"


def test_a_loss_a_tie_a_broken_guardrail_and_too_little_data():
    worse = analysis((0.70, 0.1, 2000), (0.66, 0.1, 2000))
    assert worse["decision"] == decisions.KEEP
    assert headline(worse, treatment=8, control=5, alpha=0.05).startswith(
        "Keep v5: v8 did worse, quality −5.7% (95% CI −"
    )
    tie = analysis((0.70, 0.1, 2000), (0.701, 0.1, 2000))
    assert tie["decision"] == decisions.NO_DIFFERENCE
    assert headline(tie, treatment=8, control=5, alpha=0.05).startswith("No clear difference: quality +0.1% (95% CI −")
    slow = analysis((0.70, 0.1, 2000), (0.73, 0.1, 2000), [("latency_ms", 50, (400, 40, 2000), (480, 40, 2000))])
    assert slow["decision"] == decisions.GUARDRAIL
    assert headline(slow, treatment=8, control=5, alpha=0.05) == "Don't ship v8: latency +80 ms (allowed +50 ms)."
    assert guardrail_rows(slow)[0]["sentence"] == "Degraded: latency changed by +80 ms, worse than the +50 ms allowed."
    unsure = analysis((0.70, 0.1, 2000), (0.73, 0.1, 2000), [("latency_ms", 50, (400, 900, 2000), (430, 900, 2000))])
    assert unsure["decision"] == decisions.GUARDRAIL
    assert "but it is not yet shown that latency stays within +50 ms." in headline(
        unsure, treatment=8, control=5, alpha=0.05
    )
    assert guardrail_rows(unsure)[0]["sentence"].startswith(
        "Not shown yet: latency changed by +30 ms, but it could be as bad as +"
    )
    early = analysis((0.70, 0.1, 20), (0.73, 0.1, 22))
    assert (
        headline(early, treatment=8, control=5, alpha=0.05)
        == "Too early to call: 20 and 22 sessions so far; keep it running."
    )


def test_a_broken_split_says_not_to_trust_the_numbers():
    broken = analysis((0.70, 0.1, 2000), (0.73, 0.1, 1500))
    assert broken["decision"] == decisions.INVALID_SRM
    assert headline(broken, treatment=8, control=5, alpha=0.05).startswith(
        "Don't trust these numbers: the traffic split is broken (1,500 sessions got v8, 2,000 got v5)."
    )


def test_units_names_and_p_values():
    assert [metric_name(m) for m in ("quality_score", "latency_ms", "user_satisfaction", "cost_usd")] == [
        "quality",
        "latency",
        "user satisfaction",
        "cost",
    ]
    assert [metric_unit(m) for m in ("quality_score", "latency_ms", "cost_usd")] == ["", "ms", "USD"]
    assert [signed(50, "latency_ms"), signed(-0.031, "quality_score"), signed(0.001, "cost_usd")] == [
        "+50 ms",
        "−0.031",
        "+$0.001",
    ]
    assert [p_value(None), p_value(3e-9), p_value(0.0001), p_value(0.04321)] == ["—", "< 0.0001", "0.0001", "0.0432"]
