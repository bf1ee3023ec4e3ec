"""The decision rule of DESIGN §1, property by property."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from srm_agent import Candidate, InputError, speculative_verify


def cands(*specs):
    return [Candidate(text=t, logprob=l, num_tokens=n) for t, l, n in specs]


def softmax(x):
    e = np.exp(np.asarray(x, float) - max(x))
    return e / e.sum()


THREE = cands(("a", -2.0, 2), ("b", -6.0, 3), ("c", -1.0, 1))
LOGITS = [0.3, 2.0, -1.0]


def test_distributions_ratio_consistency_and_score_follow_the_formulas():
    v = speculative_verify(THREE, LOGITS, alpha=0.3, tau=2.0, mode="threshold")
    p = softmax([-2.0 / 2, -6.0 / 3, -1.0 / 1])
    q = softmax(np.array(LOGITS) / 2.0)
    for i, d in enumerate(v.decisions):
        sr = q[i] / p[i]
        rc = 1 / (1 + abs(sr - 1))
        assert d.p_llm == pytest.approx(p[i])
        assert d.q_srm == pytest.approx(q[i])
        assert d.sr == pytest.approx(sr)
        assert d.rc == pytest.approx(rc)
        assert d.score == pytest.approx(sr**0.3 * rc**0.7)
        assert d.p_accept == pytest.approx(min(1.0, sr))
        assert d.srm_logit == LOGITS[i]


def test_length_normalisation_makes_equal_per_token_logprobs_equally_likely():
    v = speculative_verify(cands(("short", -2.0, 1), ("long", -8.0, 4)), [0.0, 0.0], mode="threshold")
    assert [d.p_llm for d in v.decisions] == pytest.approx([0.5, 0.5])


def test_alpha_extremes_reduce_the_score_to_sr_or_rc():
    only_sr = speculative_verify(THREE, LOGITS, alpha=1.0, mode="threshold")
    only_rc = speculative_verify(THREE, LOGITS, alpha=0.0, mode="threshold")
    assert [d.score for d in only_sr.decisions] == pytest.approx([d.sr for d in only_sr.decisions])
    assert [d.score for d in only_rc.decisions] == pytest.approx([d.rc for d in only_rc.decisions])


def test_stochastic_acceptance_frequency_matches_min_one_sr():
    expected = [d.p_accept for d in speculative_verify(THREE, LOGITS, mode="threshold").decisions]
    rng = np.random.default_rng(123)
    draws = 4000
    counts = np.zeros(3)
    for _ in range(draws):
        v = speculative_verify(THREE, LOGITS, rng=rng)
        # A fallback pick is accepted by the fallback, not by its own draw.
        counts += [d.accepted and not (v.fallback and i == v.order[0]) for i, d in enumerate(v.decisions)]
    assert counts / draws == pytest.approx(expected, abs=0.03)
    assert min(expected) < 0.9  # the test would not notice a rule that accepts everything


def test_threshold_mode_accepts_exactly_sr_at_least_threshold():
    v = speculative_verify(THREE, LOGITS, mode="threshold", threshold=1.0)
    assert [d.accepted for d in v.decisions] == [d.sr >= 1.0 for d in v.decisions]
    strict = speculative_verify(THREE, LOGITS, mode="threshold", threshold=0.5)
    assert sum(d.accepted for d in strict.decisions) >= sum(d.accepted for d in v.decisions)


def test_sr_of_one_is_accepted_at_threshold_one_despite_rounding():
    v = speculative_verify(cands(("a", -3.3, 3), ("b", -3.3, 3), ("c", -3.3, 3)), [0.7, 0.7, 0.7],
                           mode="threshold")
    assert all(d.accepted for d in v.decisions) and not v.fallback


def test_order_is_descending_score_with_ties_broken_by_q():
    # With alpha = 0.5 every candidate with SR >= 1 scores exactly 1, so q decides.
    v = speculative_verify(cands(("a", -1.0, 1), ("b", -1.0, 1), ("c", -1.0, 1)), [1.0, 3.0, 2.0],
                           mode="threshold", threshold=0.0)
    scores = [v.decisions[i].score for i in v.order]
    assert scores == sorted(scores, reverse=True)
    assert v.order == [1, 2, 0]


def test_exact_ties_at_alpha_one_half_are_ordered_by_q():
    # SR 5.24 and 1.17 both score exactly 1 (SR**0 at alpha = 0.5); float noise used to order them against q
    v = speculative_verify(cands(("a", -5.1, 1), ("b", -3.3, 1), ("c", -3.2, 1)), [0.7, 1.0, -0.6],
                           mode="threshold", threshold=1.0)
    a, b = v.decisions[0], v.decisions[1]
    assert a.sr > 5 and 1 < b.sr < 1.2 and a.q_srm < b.q_srm
    assert a.score == b.score == 1.0 and v.order == [1, 0]


@pytest.mark.parametrize("alpha", [0.0, 0.3, 0.5, 0.8, 1.0])
def test_closed_form_score_is_sr_to_the_alpha_times_rc_to_one_minus_alpha(alpha):
    v = speculative_verify(THREE, LOGITS, alpha=alpha, mode="threshold", threshold=0.0)
    for d in v.decisions:
        assert d.score == pytest.approx(d.sr ** alpha * d.rc ** (1 - alpha), rel=1e-12)


def test_nothing_accepted_falls_back_to_the_residual_argmax():
    v = speculative_verify(THREE, LOGITS, mode="threshold", threshold=50.0)
    p = [d.p_llm for d in v.decisions]
    q = [d.q_srm for d in v.decisions]
    residual = np.maximum(np.array(q) - np.array(p), 0)
    assert v.fallback
    assert v.order == [int(np.argmax(residual))]
    assert [d.accepted for d in v.decisions] == [i == v.order[0] for i in range(3)]


def test_zero_residual_fallback_takes_the_best_score():
    v = speculative_verify(cands(("a", -1.0, 1), ("b", -1.0, 1)), [0.0, 0.0], mode="threshold", threshold=2.0)
    assert v.fallback and v.order == [0]


def test_seeded_runs_reproduce_and_different_seeds_differ():
    outcomes = {
        seed: tuple(tuple(d.accepted for d in speculative_verify(THREE, LOGITS, rng=seed).decisions)
                    for _ in range(2))
        for seed in range(40)
    }
    assert all(a == b for a, b in outcomes.values())
    assert len({a for a, _ in outcomes.values()}) > 1


def test_llm_over_srm_inverts_the_ratio():
    forward = speculative_verify(THREE, LOGITS, mode="threshold")
    backward = speculative_verify(THREE, LOGITS, mode="threshold", ratio="llm_over_srm")
    for f, b in zip(forward.decisions, backward.decisions):
        assert b.sr == pytest.approx(1.0 / f.sr)
        assert b.rc == pytest.approx(1 / (1 + abs(1 / f.sr - 1)))
    assert [d.accepted for d in backward.decisions] != [d.accepted for d in forward.decisions]


def test_duplicates_are_merged_and_their_probabilities_add():
    dup = cands(("pick up the red block", -2.0, 4), (" pick up the red block ", -2.0, 4), ("put down", -4.0, 2))
    v = speculative_verify(dup, [1.0, 1.0, 0.0], mode="threshold")
    assert len(v.decisions) == 2
    merged = v.decisions[0]
    assert merged.count == 2
    p_all = softmax([-0.5, -0.5, -2.0])
    assert merged.p_llm == pytest.approx(p_all[0] + p_all[1])
    assert v.decisions[1].p_llm == pytest.approx(p_all[2])
    assert merged.q_srm == pytest.approx(softmax([1.0, 0.0])[0])
    assert all(0 <= i < 2 for i in v.order)


def test_extreme_ratios_stay_finite():
    v = speculative_verify(cands(("a", -0.001, 1), ("b", -900.0, 1)), [-500.0, 500.0], mode="threshold")
    for d in v.decisions:
        assert all(math.isfinite(x) for x in (d.sr, d.rc, d.score, d.p_accept))


def test_single_candidate_is_accepted():
    v = speculative_verify(cands(("only", -5.0, 2)), [-3.0])
    assert v.order == [0] and not v.fallback and v.decisions[0].sr == pytest.approx(1.0)


def test_verdict_round_trips_through_json():
    v = speculative_verify([{"text": "a", "logprob": -1, "num_tokens": 1}, {"text": "b", "logprob": -2.5,
                                                                          "num_tokens": 2}], [0.0, 1.0], rng=1)
    data = json.loads(json.dumps(v.to_dict()))
    assert set(data) == {"decisions", "order", "fallback", "params"}
    assert set(data["decisions"][0]) >= {"text", "logprob", "num_tokens", "p_llm", "srm_logit", "q_srm", "sr",
                                         "rc", "score", "p_accept", "accepted", "cached"}
    assert data["params"]["alpha"] == 0.5


@pytest.mark.parametrize(
    ("candidates", "logits", "kwargs", "field"),
    [
        ([], [], {}, "candidates"),
        ([{"text": "a", "logprob": float("nan"), "num_tokens": 1}], [0.0], {}, "candidates[0].logprob"),
        ([{"text": "a", "logprob": float("-inf"), "num_tokens": 1}], [0.0], {}, "candidates[0].logprob"),
        ([{"text": "a", "logprob": 0.5, "num_tokens": 1}], [0.0], {}, "candidates[0].logprob"),
        ([{"text": "a", "logprob": "low", "num_tokens": 1}], [0.0], {}, "candidates[0].logprob"),
        ([{"text": "a", "num_tokens": 1}], [0.0], {}, "candidates[0].logprob"),
        ([{"text": "  ", "logprob": -1.0, "num_tokens": 1}], [0.0], {}, "candidates[0].text"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 0}], [0.0], {}, "candidates[0].num_tokens"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0, 1.0], {}, "srm_logits"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [float("inf")], {}, "srm_logits[0]"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0], {"alpha": 1.5}, "alpha"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0], {"tau": 0.0}, "tau"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0], {"mode": "greedy"}, "mode"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0], {"ratio": "p/q"}, "ratio"),
        ([{"text": "a", "logprob": -1.0, "num_tokens": 1}], [0.0], {"threshold": -1.0}, "threshold"),
    ],
)
def test_bad_input_names_the_field(candidates, logits, kwargs, field):
    with pytest.raises(InputError) as info:
        speculative_verify(candidates, logits, **kwargs)
    assert info.value.field == field


@pytest.mark.parametrize("tau", [5e-324, 1e-320, 1e-300, 1.7e308])
@pytest.mark.parametrize("ratio", ["srm_over_llm", "llm_over_srm"])
def test_every_finite_tau_gives_a_finite_verdict(tau, ratio):
    # A tiny tau makes the SRM distribution one-hot on the best logit; a huge one makes it uniform.
    v = speculative_verify(THREE, [1e4, -1e4, 0.5], tau=tau, ratio=ratio, rng=0)
    json.dumps(v.to_dict(), allow_nan=False)  # raises on NaN or inf
    q = [d.q_srm for d in v.decisions]
    assert q == pytest.approx([1.0, 0.0, 0.0] if tau < 1 else [1 / 3] * 3)
    assert v.order and all(math.isfinite(d.score) and d.score >= 0 for d in v.decisions)
