"""A control: random rewards at no cost. What breadth alone reaches; a verifier earns its place above it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srm_agent.search.evaluators.base import EvalContext, Evaluation, distinct, log_reward, ranked_verdict
from srm_agent.search.proposers import sub_seed


class RandomEvaluator:
    """Reward = log u with u uniform in (0, 1), seeded per node; nothing is pruned."""

    name = "random"

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        firsts, _, _ = distinct(candidates)
        draws = np.random.default_rng(sub_seed(ctx.seed, "random", ctx.node["id"])).random(len(firsts))
        rewards = [log_reward(float(u)) for u in draws]
        return Evaluation(ranked_verdict(candidates, rewards, priors=[float(u) for u in draws],
                                         details=[{"u": float(u)} for u in draws]))
