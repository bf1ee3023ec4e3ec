"""GSM8K as a step-wise search task.

A step is one reasoning sentence on its own line; a chain ends with "The answer is N." (the
RAP/CoT convention, so answers are extracted the way those baselines extract them). Data is read
from a local JSONL file (openai/grade-school-math format) at run time, never bundled; without one
the task falls back on a few built-in examples, so it runs on a fresh machine.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srm_tasks.gsm8k.answers import CALCULATOR_NOTE, ANSWER_MARKER, SENTENCE_END, answers_match, extract_answer
from srm_tasks.gsm8k.data import load_gsm8k

INSTRUCTION = ('Solve the math word problem step by step. Write one sentence per line and end with '
               '"The answer is N."')
BUILTIN_SHOTS = [  # written for this project; used when no train split is given
    {"question": "Mia has 3 boxes with 12 pencils in each box. She gives away 10 pencils. How many pencils "
                 "does she have left?",
     "solution": "Mia starts with 3 * 12 = 36 pencils.\nAfter giving some away she has 36 - 10 = 26 pencils.",
     "answer": "26"},
    {"question": "A bus ticket costs $2.50 and Omar rides the bus twice a day for 4 days. How much does he "
                 "spend on tickets?",
     "solution": "Omar rides the bus 2 * 4 = 8 times.\nHe spends 8 * 2.50 = $20 on tickets.",
     "answer": "20"},
    {"question": "A garden has 45 tulips. One third of them are red and the rest are yellow. How many yellow "
                 "tulips are there?",
     "solution": "There are 45 / 3 = 15 red tulips.\nSo there are 45 - 15 = 30 yellow tulips.",
     "answer": "30"},
]



def render_context(question: str, steps: Sequence[str]) -> str:
    """A question and the steps so far, as the generator continues them and the SRM reads them (PRM800K's
    math steps are laid out the same way for training, so an SRM reads search states as it was trained)."""
    return f"Question: {question.strip()}\nAnswer:\n" + "".join(f"{s}\n" for s in steps)


def question_and_gold(problem: Any) -> dict[str, Any]:
    """``{question, gold}`` of a loaded problem, a raw record (answer with "#### N") or a bare question (no gold)."""
    if isinstance(problem, str) and problem.strip():
        return {"question": problem, "gold": None}
    if not (isinstance(problem, dict) and isinstance(problem.get("question"), str)):
        raise ValueError(f"a gsm8k problem is a question string or a dict with 'question', got {problem!r}")
    gold = problem.get("answer")
    if gold is not None and (gold := extract_answer(str(gold))) is None:
        raise ValueError(f"the gold answer {problem['answer']!r} is not a number")
    return {"question": problem["question"], "gold": gold}


def solution_lines(solution: str, answer: str) -> list[str]:
    """A GSM8K solution as search steps: one sentence per line, no calculator notes, then the answer line."""
    text = CALCULATOR_NOTE.sub("", solution)
    sentences = [s.strip() for line in text.splitlines() for s in SENTENCE_END.split(line)]
    return [s for s in sentences if s] + [f"The answer is {answer}."]


class GradedTask:
    """What every GSM8K task shares: free-text actions, and an answer graded against a gold one the search never sees."""

    name = "gsm8k"
    goal_visible = False  # the gold answer only grades the answer a search commits to

    def answer(self, state: dict[str, Any]) -> str | None:
        raise NotImplementedError

    def legal_actions(self, state: dict[str, Any]) -> list[str] | None:
        return None

    def is_solved(self, state: dict[str, Any]) -> bool:
        return answers_match(self.answer(state), state["gold"])

    def goal_progress(self, state: dict[str, Any]) -> float:
        return 1.0 if self.is_solved(state) else 0.0


class GSM8KTask(GradedTask):
    """GSM8K step by step; states are ``{"question", "gold", "steps"}`` (see ``srm_agent.search.task.Task``).

    Few-shot examples come from ``train_path`` (``n_shots`` drawn with ``seed`` among solutions of
    at most ``max_steps`` lines, so the examples show chains the search can finish) or, without one,
    the built-in examples (at most three). A chain ends when a step states the answer; the prompt
    for step ``max_steps`` is led into "The answer is" (as RAP forces its final question at the
    depth limit), so every chain commits to an answer within the budget.
    """

    def __init__(self, train_path: str | Path | None = None, n_shots: int = 4, max_steps: int = 5,
                 seed: int = 0) -> None:
        if n_shots < 0 or max_steps < 1:
            raise ValueError(f"need n_shots >= 0 and max_steps >= 1, got {n_shots} and {max_steps}")
        self.max_steps = max_steps
        self.shots_source = str(train_path) if train_path is not None else "built-in"
        if train_path is None:
            shots = [(s["question"], solution_lines(s["solution"], s["answer"])) for s in BUILTIN_SHOTS[:n_shots]]
        else:
            fitting = [(p["question"], lines) for p in load_gsm8k(train_path)
                       if len(lines := solution_lines(p["solution"], p["answer"])) <= max_steps]
            if len(fitting) < n_shots:
                raise ValueError(f"only {len(fitting)} solutions in {train_path} fit in max_steps={max_steps}; "
                                 f"{n_shots} shots asked")
            shots = random.Random(seed).sample(fitting, n_shots)
        self.header = "".join(render_context(q, lines) + "\n" for q, lines in shots)

    def provenance(self) -> dict[str, Any]:
        """Where the few-shot examples come from, for a run's summary."""
        return {"shots": self.shots_source}

    def initial_state(self, problem: Any) -> dict[str, Any]:
        return {**question_and_gold(problem), "steps": []}

    def _at_last_step(self, state: dict[str, Any]) -> bool:
        return len(state["steps"]) == self.max_steps - 1

    def prompt(self, state: dict[str, Any]) -> str:
        lead = "The answer is" if self._at_last_step(state) else ""
        return f"{INSTRUCTION}\n\n{self.header}{self.describe(state)}{lead}"

    def describe(self, state: dict[str, Any]) -> str:
        return render_context(state["question"], state["steps"])

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        line = " ".join(action.split())  # one step is one line
        if not line:
            raise ValueError("an empty step")
        if self._at_last_step(state) and not ANSWER_MARKER.search(line):
            line = f"The answer is {line}"  # the prompt ended in "The answer is"
        return {**state, "steps": [*state["steps"], line]}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return bool(state["steps"] and ANSWER_MARKER.search(state["steps"][-1]))

    def answer(self, state: dict[str, Any]) -> str | None:
        return extract_answer(state["steps"][-1]) if self.is_terminal(state) and state["steps"] else None

    def self_eval_query(self, state: dict[str, Any], action: str) -> tuple[str, str, str | None]:
        return (f"{self.describe(state)}New step: {' '.join(action.split())}\n"
                "Is the new step correct? Answer Yes or No.\nAnswer:", " Yes", " No")
