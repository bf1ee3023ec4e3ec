"""GSM8K chain of thought as llm-reasoners runs it: 4 examples of its CoT pool, then "Q: <question>\\nA:".

The whole chain is one line (the pool's answers are), so a search over this task takes a single step: one
generation up to the newline, as llm-reasoners' CoT makes one greedy call. Its answer is what the line states.
"""

from __future__ import annotations

import random
from typing import Any

from srm_agent.search.proposers import sub_seed
from srm_tasks.gsm8k.task import GSM8KTask, question_and_gold


class GSM8KCoTTask(GSM8KTask):
    """States are ``{"question", "gold", "shots", "steps"}``; ``shots`` indexes the pool examples drawn for it."""

    def __init__(self, pool: tuple[str, ...], prefix: str, source: str, n_shots: int = 4, seed: int = 0) -> None:
        if not pool or "{QUESTION}" not in prefix:
            raise ValueError("a CoT pool needs examples and a prefix with {QUESTION}")
        self.pool, self.prefix, self.source = pool, prefix, source
        self.n_shots, self.seed = min(n_shots, len(pool)), seed

    def provenance(self) -> dict[str, Any]:
        return {"cot_prompts": self.source, "cot_shots": self.n_shots}

    def initial_state(self, problem: Any) -> dict[str, Any]:
        fields = question_and_gold(problem)
        rng = random.Random(sub_seed(self.seed, "cot-shots", fields["question"]))
        return {**fields, "shots": rng.sample(range(len(self.pool)), self.n_shots), "steps": []}

    def prompt(self, state: dict[str, Any]) -> str:
        return "".join(self.pool[i] for i in state["shots"]) + self.prefix.replace("{QUESTION}", state["question"])

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        line = " ".join(action.split())
        if not line:
            raise ValueError("an empty chain")
        return {**state, "steps": [*state["steps"], line if line.endswith(".") else line + "."]}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return bool(state["steps"])
