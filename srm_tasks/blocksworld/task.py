"""Blocksworld as a ``srm_agent.search.task.Task``: RAP's few-shot plan prompt, legal actions in English.

A state is JSON: ``{"init", "goal", "facts", "steps", "shots"}`` (sorted atom strings, English actions,
and the indices of the pool's demonstrations this problem's prompts show). The prompt shows the initial
conditions and the steps so far, as RAP's prompts do; ``describe`` shows the SRM the current arrangement with
each block's goal beside it.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from srm_tasks.blocksworld.english import action_text, apply_text, arrangement_text, facts_text, other_goal_facts
from srm_tasks.blocksworld.problems import canonical_key, fact_strings, problem_facts
from srm_tasks.blocksworld.prompts import default_pool, load_prompt_pool, plan_prompt, self_eval_prompt
from srm_tasks.blocksworld.world import State, legal_ops, parse_atom

RAP_SHOTS = 4  # RAP samples 4 demonstrations from its pool for each problem


def _facts(strings: list[str]) -> State:
    return frozenset(parse_atom(s) for s in strings)


class BlocksworldTask:
    """The search task. ``prompt_pool`` is a RAP pool JSON (None: the built-in pool).

    Each problem's prompts show ``n_shots`` demonstrations (default: 4, or all of a smaller pool); from a
    pool larger than that they are sampled for each problem, seeded by ``seed`` and the problem itself, as
    RAP's evaluator samples them (``shuffle_prompt=True``).
    """

    name = "blocksworld"
    goal_visible = True  # the goal is stated in the problem; RAP's world model checks it too

    def __init__(self, prompt_pool: str | Path | None = None, n_shots: int | None = None, *, seed: int = 0) -> None:
        self.pool = default_pool() if prompt_pool is None else load_prompt_pool(prompt_pool)
        available = len(self.pool["examples"])
        self.n_shots = min(RAP_SHOTS, available) if n_shots is None else n_shots
        if not 0 <= self.n_shots <= available:
            raise ValueError(f"n_shots must be in 0..{available} for this pool, got {n_shots!r}")
        self.seed = seed

    def shots_for(self, problem: dict[str, Any]) -> list[int]:
        """The demonstrations a problem's prompts show: the whole pool in order when it has just enough."""
        available = len(self.pool["examples"])
        if self.n_shots == available:
            return list(range(available))
        return random.Random(f"{self.seed}:{canonical_key(problem)}").sample(range(available), self.n_shots)

    def provenance(self) -> dict[str, Any]:
        """Where the prompts come from, for a run's summary."""
        return {"prompt_pool": self.pool["source"], "demonstrations": self.n_shots}

    def initial_state(self, problem: Any) -> dict[str, Any]:
        init, goal = problem_facts(problem)
        return {"init": fact_strings(init), "goal": fact_strings(goal), "facts": fact_strings(init), "steps": [],
                "shots": self.shots_for(problem)}

    def prompt(self, state: dict[str, Any]) -> str:
        return plan_prompt(self.pool, state["shots"], facts_text(_facts(state["init"])),
                           facts_text(_facts(state["goal"])), state["steps"])

    def describe(self, state: dict[str, Any]) -> str:
        """What the SRM sees: the arrangement as stacks with each block's goal beside it (marked where it is
        met), then any goal fact that is not about where a block stands. The state is Markov, so the plan so
        far would add length, not information; every goal fact is in the text, none can be cut off."""
        goal = _facts(state["goal"])
        rest = other_goal_facts(goal)
        return (f"Stacks, top to bottom, each block with its goal: {arrangement_text(_facts(state['facts']), goal)}."
                + (f" The goal also has that {facts_text(rest)}." if rest else ""))

    def legal_actions(self, state: dict[str, Any]) -> list[str]:
        return [action_text(op) for op in legal_ops(_facts(state["facts"]))]

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        op, facts = apply_text(_facts(state["facts"]), action)
        return {**state, "facts": fact_strings(facts), "steps": [*state["steps"], action_text(op)]}

    def is_solved(self, state: dict[str, Any]) -> bool:
        return set(state["goal"]) <= set(state["facts"])

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return self.is_solved(state)

    def goal_progress(self, state: dict[str, Any]) -> float:
        """The share of the goal's facts that hold (RAP's goal reward when the goal is not reached)."""
        return len(set(state["goal"]) & set(state["facts"])) / len(state["goal"])

    def answer(self, state: dict[str, Any]) -> str | None:
        return "\n".join(state["steps"]) or None

    def self_eval_query(self, state: dict[str, Any], action: str) -> tuple[str, str, str | None]:
        """RAP's self-evaluation: the pool's 5-shot template about the current state; the answer read is "good"."""
        return (self_eval_prompt(self.pool, facts_text(_facts(state["facts"])), facts_text(_facts(state["goal"])),
                                 action), "good", None)
