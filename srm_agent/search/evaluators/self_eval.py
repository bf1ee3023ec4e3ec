"""Self-evaluation as the baselines' authors run it (llm-reasoners' ToT and RAP on Blocksworld).

reward = intuition + self_eval, where intuition is the action's log-likelihood after the plan prompt
and self_eval the log-probability of the task's "good" answer after its self-evaluation prompt
(``Task.self_eval_query``; where the task also names a "bad" answer, the log of the normalised
two-way probability, as RAP's GSM8K "useful?" question). Nothing is pruned. Every call is generator
cost: one self-evaluation call per distinct candidate, plus one intuition call each when
``intuition="rescore"`` (as the originals score sampled actions); with ``"proposal"`` the intuition
is the log-probability the proposal already computed (enumerated legal actions); with ``"none"`` there is
no intuition term, so the reward is the self-evaluation alone (RAP's GSM8K ``fast_reward``: P("Yes") against
P("No") after its "Is the new question useful?" prompt, one call per candidate).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from srm_agent.generators.base import Usage
from srm_agent.search.evaluators.base import EvalContext, Evaluation, distinct, ranked_verdict

INTUITIONS = ("proposal", "rescore", "none")


class SelfEvaluator:
    name = "self_eval"

    def __init__(self, intuition: str = "proposal") -> None:
        if intuition not in INTUITIONS:
            raise ValueError(f"intuition must be one of {', '.join(INTUITIONS)}, got {intuition!r}")
        self.intuition = intuition

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        if ctx.generator is None:
            raise ValueError("self-evaluation needs a generator")
        firsts, _, _ = distinct(candidates)
        usage = Usage()
        details = []
        for cand in firsts:
            if self.intuition == "rescore":
                lead = "" if not ctx.prompt or ctx.prompt[-1:].isspace() else " "
                scored = ctx.generator.score_choices(ctx.prompt, [lead + cand["text"]])
                usage, intuition = usage + scored.usage, scored[0].logprob
            elif self.intuition == "proposal":
                intuition = float(cand["logprob"])
            else:
                intuition = 0.0
            prompt, good, bad = ctx.task.self_eval_query(ctx.node["task_state"], cand["text"])
            graded = ctx.generator.score_choices(prompt, [good] if bad is None else [good, bad])
            usage = usage + graded.usage
            if bad is None:
                self_eval = graded[0].logprob
            else:
                self_eval = graded[0].logprob - float(np.logaddexp(graded[0].logprob, graded[1].logprob))
            details.append({"intuition": intuition, "self_eval": self_eval})
        rewards = [d["intuition"] + d["self_eval"] for d in details]
        return Evaluation(ranked_verdict(candidates, rewards, details=details, params={"intuition": self.intuition}),
                          usage=usage)
