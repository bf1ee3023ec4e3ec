"""Evaluators: the SRM rule, self-evaluation, the generator's prior, and a random control."""

from srm_agent.search.evaluators.base import EvalContext, Evaluation, Evaluator, ranked_verdict

__all__ = ["EvalContext", "Evaluation", "Evaluator", "ranked_verdict"]
