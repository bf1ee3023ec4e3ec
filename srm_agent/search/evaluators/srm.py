"""The SRM evaluator: the speculative rule accepts or rejects each candidate, and ranks the accepted.

Scores go through the score cache (one read, one batched SRM call for the misses, one write), exactly as
the library's LangGraph node and tool do (``srm_agent.verify.verify_candidates``). The search's fast
reward is log(score), so beam and MCTS rank by the rule's score; ties (at alpha = 0.5 every accepted
candidate with SR >= 1 scores exactly 1) are broken by the SRM's probability q, as the rule orders them.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from srm_agent.cache import ScoreCache
from srm_agent.node import rule_params
from srm_agent.search.evaluators.base import EvalContext, Evaluation, log_reward
from srm_agent.verify import Scorer, verify_candidates


class SRMEvaluator:
    """The speculative rule with ``srm`` as the judge; ``rule`` overrides the rule's defaults (DESIGN §1)."""

    name = "srm"

    def __init__(self, srm: Scorer, *, cache: ScoreCache | None = None, **rule: Any) -> None:
        if srm is None:
            raise ValueError("evaluator='srm' needs an srm (a SpeculativeRewardModel or any Scorer)")
        self.srm = srm
        self.cache = cache
        self.params = rule_params(**rule)

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        started = time.perf_counter()
        verdict = verify_candidates(self.srm, ctx.node["state"], candidates, cache=self.cache, seed=ctx.seed,
                                    **self.params).to_dict()
        seconds = time.perf_counter() - started
        for decision in verdict["decisions"]:
            decision["reward"] = log_reward(decision["score"])
            decision["prior"] = decision["q_srm"]
        scored = sum(not d["cached"] for d in verdict["decisions"])
        return Evaluation(verdict, srm_calls=int(scored > 0), srm_scored=scored,
                          cache_hits=len(verdict["decisions"]) - scored, srm_seconds=seconds)
