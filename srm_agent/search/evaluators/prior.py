"""The generator's own preference, at no extra cost: keep every candidate, best prior first (chain of thought)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from srm_agent.search.evaluators.base import EvalContext, Evaluation, distinct, ranked_verdict


class PriorEvaluator:
    """Reward = the candidate's length-normalised generator probability; nothing is pruned."""

    name = "prior"

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        firsts, _, _ = distinct(candidates)
        scores = [math.exp(c["logprob"] / c["num_tokens"]) for c in firsts]
        return Evaluation(ranked_verdict(candidates, scores, details=[{"score": s} for s in scores]))
