"""The evaluator protocol: judge an expansion's candidates, say which to keep and in what order.

An evaluator returns a verdict in the rule's shape (``decisions``, ``order``, ``fallback``,
``params``), one decision per distinct candidate text (duplicates merged, as the rule merges them),
each with ``accepted``, a ``reward`` (the search's fast reward: beam ranks by it, MCTS starts from it,
DFS orders children by it) and a ``prior`` that breaks ties. It also returns what judging cost.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from srm_agent.generators.base import Generator, Usage
from srm_agent.rule import as_candidate, merge_duplicates
from srm_agent.search.task import Task


@dataclass(frozen=True)
class EvalContext:
    """What an evaluator may read about the expansion it judges."""

    task: Task
    node: dict[str, Any]  # the node being expanded: task_state, state (the SRM's text), depth, id
    generator: Generator | None
    prompt: str | None  # the prompt the candidates were proposed from
    seed: int | None


@dataclass(frozen=True)
class Evaluation:
    verdict: dict[str, Any]
    usage: Usage = field(default_factory=Usage)  # generator calls made to judge (the evaluation role)
    srm_calls: int = 0
    srm_scored: int = 0
    cache_hits: int = 0
    srm_seconds: float = 0.0


@runtime_checkable
class Evaluator(Protocol):
    name: str

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        ...


def distinct(candidates: Sequence[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[int], list[float]]:
    """The first candidate of each distinct text, how many share it, and each group's generator probability."""
    cands = [as_candidate(c, i) for i, c in enumerate(candidates)]
    members, log_p = merge_duplicates(cands)
    firsts = [dict(candidates[g[0]]) for g in members]
    return firsts, [len(g) for g in members], [float(x) for x in np.exp(log_p)]


def ranked_verdict(candidates: Sequence[dict[str, Any]], rewards: Sequence[float], *,
                   details: Sequence[dict[str, Any]] | None = None, params: dict[str, Any] | None = None,
                   priors: Sequence[float] | None = None) -> dict[str, Any]:
    """A verdict that keeps every distinct candidate, best ``reward`` first (ties: higher prior, then order).

    ``rewards`` (and ``details``, ``priors``) are aligned with the distinct candidates of
    ``distinct(candidates)``; ``priors`` default to the generator's probabilities.
    """
    firsts, counts, p_llm = distinct(candidates)
    if len(rewards) != len(firsts):
        raise ValueError(f"{len(rewards)} rewards for {len(firsts)} distinct candidates")
    priors = p_llm if priors is None else list(priors)
    decisions = []
    for i, cand in enumerate(firsts):
        decisions.append({"text": cand["text"], "logprob": float(cand["logprob"]), "num_tokens": int(cand["num_tokens"]),
                          "count": counts[i], "p_llm": p_llm[i], **(details[i] if details else {}),
                          "reward": float(rewards[i]), "prior": float(priors[i]), "accepted": True})
    order = sorted(range(len(decisions)), key=lambda i: (-decisions[i]["reward"], -decisions[i]["prior"], i))
    return {"decisions": decisions, "order": order, "fallback": False, "params": dict(params or {})}


def log_reward(value: float) -> float:
    """The log of a positive score, floored so that a zero does not become -inf."""
    return math.log(max(value, 1e-300))
