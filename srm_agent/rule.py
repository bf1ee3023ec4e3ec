"""The speculative accept/reject rule (DESIGN §1): pure math, no model, no graph.

The generator is the draft and the SRM is the judge. Each candidate's speculative reward is
``SR = q/p`` (SRM probability over generator probability, both normalised over the K
candidates); it is accepted with probability ``min(1, SR)``, and accepted candidates are
ranked by ``SR**alpha * RC**(1 - alpha)`` where ``RC = 1 / (1 + |SR - 1|)``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np

from srm_agent.errors import InputError

Mode = Literal["stochastic", "threshold"]
Ratio = Literal["srm_over_llm", "llm_over_srm"]
MODES: tuple[str, ...] = ("stochastic", "threshold")
RATIOS: tuple[str, ...] = ("srm_over_llm", "llm_over_srm")
# The rule's defaults (DESIGN §1), defined here only.
ALPHA, TAU, MODE, THRESHOLD, RATIO = 0.5, 1.0, "stochastic", 1.0, "srm_over_llm"
RULE_DEFAULTS: dict[str, Any] = {"alpha": ALPHA, "tau": TAU, "mode": MODE, "threshold": THRESHOLD, "ratio": RATIO}

# numpy's SeedSequence takes no negative seed and torch.Generator.manual_seed nothing >= 2**64.
MAX_SEED = 2**64 - 1
# exp() of more than this overflows a float64; ratios beyond e**700 are all "infinitely" preferred.
_MAX_LOG = 700.0
# Two log-probabilities computed along different float paths may differ in the last bits.
_LOG_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Candidate:
    """A proposed action with its generator log-probability (summed over its tokens)."""

    text: str
    logprob: float
    num_tokens: int


@dataclass(frozen=True)
class Decision:
    """The rule's record for one distinct candidate text (duplicates merged, ``count`` of them)."""

    text: str
    logprob: float
    num_tokens: int
    p_llm: float
    srm_logit: float
    q_srm: float
    sr: float
    rc: float
    score: float
    p_accept: float
    accepted: bool
    cached: bool
    count: int = 1


@dataclass(frozen=True)
class Verdict:
    """All decisions of one expansion; ``order`` lists the indices to expand, best first."""

    decisions: list[Decision]
    order: list[int]
    fallback: bool
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def accepted(self) -> list[Decision]:
        """The decisions to expand, in expansion order."""
        return [self.decisions[i] for i in self.order]

    def to_dict(self) -> dict[str, Any]:
        return {
            "decisions": [asdict(d) for d in self.decisions],
            "order": list(self.order),
            "fallback": self.fallback,
            "params": dict(self.params),
        }


def as_candidate(obj: Candidate | Mapping[str, Any] | Any, index: int) -> Candidate:
    """Coerce a Candidate, a dict or any object with the three attributes; name the bad field."""
    if isinstance(obj, Candidate):
        raw = {"text": obj.text, "logprob": obj.logprob, "num_tokens": obj.num_tokens}
    elif isinstance(obj, Mapping):
        raw = obj
    else:
        raw = {name: getattr(obj, name) for name in ("text", "logprob", "num_tokens") if hasattr(obj, name)}
    where = f"candidates[{index}]"
    for name in ("text", "logprob", "num_tokens"):
        if name not in raw:
            raise InputError(f"{where}.{name}", "missing")
    text, logprob, num_tokens = raw["text"], raw["logprob"], raw["num_tokens"]
    if not isinstance(text, str) or not text.strip():
        raise InputError(f"{where}.text", "must be a non-empty string")
    if isinstance(logprob, bool) or not isinstance(logprob, (int, float, np.floating, np.integer)):
        raise InputError(f"{where}.logprob", f"must be a number, got {type(logprob).__name__}")
    if not math.isfinite(float(logprob)):
        raise InputError(f"{where}.logprob", f"must be finite, got {float(logprob)}")
    if float(logprob) > 0.0:
        raise InputError(f"{where}.logprob", f"a log-probability is <= 0, got {float(logprob)}")
    if isinstance(num_tokens, bool) or not isinstance(num_tokens, (int, np.integer)) or num_tokens < 1:
        raise InputError(f"{where}.num_tokens", f"must be an integer >= 1, got {num_tokens!r}")
    return Candidate(text=text, logprob=float(logprob), num_tokens=int(num_tokens))


def check_rule_params(*, alpha: float, tau: float, mode: str, threshold: float, ratio: str) -> None:
    """Reject rule parameters outside their domain, naming the parameter."""
    if not (isinstance(alpha, (int, float)) and 0.0 <= alpha <= 1.0):
        raise InputError("alpha", f"must be in [0, 1], got {alpha!r}")
    if not (isinstance(tau, (int, float)) and math.isfinite(tau) and tau > 0.0):
        raise InputError("tau", f"must be a finite number > 0, got {tau!r}")
    if mode not in MODES:
        raise InputError("mode", f"must be one of {', '.join(MODES)}, got {mode!r}")
    if not (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold >= 0.0):
        raise InputError("threshold", f"must be a finite number >= 0, got {threshold!r}")
    if ratio not in RATIOS:
        raise InputError("ratio", f"must be one of {', '.join(RATIOS)}, got {ratio!r}")


def _log_softmax(x: np.ndarray, tau: float = 1.0) -> np.ndarray:
    """log softmax(x / tau), shifting before dividing: with a tiny tau the gaps overflow to -inf (a
    probability of 0) instead of inf - inf = NaN, so every finite tau > 0 gives a distribution."""
    with np.errstate(over="ignore"):
        shifted = (x - x.max()) / tau
    return shifted - np.log(np.exp(shifted).sum())


def merge_duplicates(cands: Sequence[Candidate]) -> tuple[list[list[int]], np.ndarray]:
    """Candidates grouped by text (stripped), first occurrence first, and each group's generator log-probability:
    the length-normalised softmax over all K, the members' probabilities added."""
    log_p_all = _log_softmax(np.array([c.logprob / c.num_tokens for c in cands], dtype=np.float64))
    groups: dict[str, list[int]] = {}
    for i, c in enumerate(cands):
        groups.setdefault(c.text.strip(), []).append(i)
    members = list(groups.values())
    return members, np.array([np.logaddexp.reduce(log_p_all[g]) for g in members])


def log_selection_score(log_sr: np.ndarray, alpha: float) -> np.ndarray:
    """log(SR**alpha * RC**(1 - alpha)) in closed form, so that equal scores are exactly equal.

    For SR >= 1, RC = 1/SR and the score is SR**(2*alpha - 1) (at alpha = 0.5 exactly 1: ties are the normal
    case, broken by q); for SR < 1, RC = 1/(2 - SR) and the score is SR**alpha * (2 - SR)**(alpha - 1).
    """
    log_sr = np.asarray(log_sr, dtype=np.float64)
    below = np.minimum(log_sr, 0.0)
    return np.where(log_sr >= 0.0, (2.0 * alpha - 1.0) * log_sr,
                    alpha * below + (alpha - 1.0) * np.log(2.0 - np.exp(below)))


def speculative_verify(
    candidates: Sequence[Candidate | Mapping[str, Any]],
    srm_logits: Sequence[float],
    *,
    alpha: float = ALPHA,
    tau: float = TAU,
    mode: Mode = MODE,
    threshold: float = THRESHOLD,
    ratio: Ratio = RATIO,
    rng: np.random.Generator | int | None = None,
    cached: Sequence[bool] | None = None,
) -> Verdict:
    """Accept or reject K candidates and rank the accepted ones (DESIGN §1).

    ``srm_logits`` and ``cached`` are aligned with ``candidates``. ``rng`` is a numpy
    Generator or a seed; stochastic mode draws one uniform per distinct candidate.
    """
    check_rule_params(alpha=alpha, tau=tau, mode=mode, threshold=threshold, ratio=ratio)
    if len(candidates) == 0:
        raise InputError("candidates", "must hold at least one candidate")
    cands = [as_candidate(c, i) for i, c in enumerate(candidates)]
    logits = [float(x) for x in srm_logits]
    if len(logits) != len(cands):
        raise InputError("srm_logits", f"has {len(logits)} values for {len(cands)} candidates")
    for i, x in enumerate(logits):
        if not math.isfinite(x):
            raise InputError(f"srm_logits[{i}]", f"must be finite, got {x}")
    cached_flags = [False] * len(cands) if cached is None else [bool(c) for c in cached]
    if len(cached_flags) != len(cands):
        raise InputError("cached", f"has {len(cached_flags)} values for {len(cands)} candidates")

    # 1. Generator distribution over all K, length-normalised; duplicates then merged (their p add).
    members, log_p = merge_duplicates(cands)
    firsts = [g[0] for g in members]

    # 2. SRM distribution over the distinct candidates.
    r = np.array([logits[i] for i in firsts], dtype=np.float64)
    log_q = _log_softmax(r, tau)

    # 3-5. Speculative reward, acceptance, consistency, score (all in log space, then clipped).
    judge, draft = (log_q, log_p) if ratio == "srm_over_llm" else (log_p, log_q)
    log_sr = np.clip(judge - draft, -_MAX_LOG, _MAX_LOG)
    sr = np.exp(log_sr)
    p_accept = np.minimum(1.0, sr)
    rc = 1.0 / (1.0 + np.abs(sr - 1.0))
    score = np.exp(np.clip(log_selection_score(log_sr, alpha), -_MAX_LOG, _MAX_LOG))
    if mode == "stochastic":
        generator = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        accepted = generator.random(len(members)) < p_accept
    else:
        accepted = log_sr >= math.log(threshold) - _LOG_TOLERANCE if threshold > 0 else np.ones(len(members), bool)

    q = np.exp(log_q)

    def rank(i: int) -> tuple[float, float, int]:
        return (-score[i], -q[i], i)

    order = sorted((i for i in range(len(members)) if accepted[i]), key=rank)
    fallback = not order
    if fallback:
        # 6. As speculative sampling does: resample from the residual (judge - draft)+, here its argmax.
        residual = np.maximum(np.exp(judge) - np.exp(draft), 0.0)
        if residual.max() > 0.0:
            pick = int(np.argmax(residual))
        else:
            pick = min(range(len(members)), key=rank)
        accepted[pick] = True
        order = [pick]

    decisions = [
        Decision(
            text=cands[first].text,
            logprob=cands[first].logprob,
            num_tokens=cands[first].num_tokens,
            p_llm=float(np.exp(log_p[j])),
            srm_logit=float(r[j]),
            q_srm=float(q[j]),
            sr=float(sr[j]),
            rc=float(rc[j]),
            score=float(score[j]),
            p_accept=float(p_accept[j]),
            accepted=bool(accepted[j]),
            cached=all(cached_flags[i] for i in members[j]),
            count=len(members[j]),
        )
        for j, first in enumerate(firsts)
    ]
    params = {"alpha": alpha, "tau": tau, "mode": mode, "threshold": threshold, "ratio": ratio}
    return Verdict(decisions=decisions, order=order, fallback=fallback, params=params)
