"""GSM8K as RAP searches it (llm-reasoners' ``examples/RAP/gsm8k``): an action is a sub-question.

A state is the question and the sub-questions answered so far. The generator proposes the next
sub-question after the instruction, 4 interactive examples drawn for the problem and the sub-questions and
answers so far; at the depth limit it is led into "Now we can answer the question:" (one greedy call), and a
sub-question that starts so is replaced by the question's own final sentence, as RAP does. The answer to a
sub-question comes from the world model (``srm_tasks.gsm8k.rap_world``), never from the task: ``step`` only
refuses. The chain is over when the last sub-question is the overall one; its answer is the problem's.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from typing import Any

from srm_agent.generators.base import Generator
from srm_agent.search.proposers import Proposal, sub_seed
from srm_tasks.gsm8k.answers import extract_answer
from srm_tasks.gsm8k.rap_prompts import RAPPrompts
from srm_tasks.gsm8k.task import GradedTask, question_and_gold, render_context

# RAP's guess at a problem's final question: from the last capitalised clause that asks something to the end.
OVERALL = re.compile(r".*((([A-Z].* (calculate|how|what|find|true or false))|((Calculate|How|What|Find|True or false)))"
                     r".*)$", re.DOTALL)


def overall_question(question: str) -> str:
    match = OVERALL.match(question)
    return match[1] if match else question


class GSM8KRAPTask(GradedTask):
    """States are ``{"question", "gold", "shots", "subs": [{"q", "a"}, ...]}`` (JSON, as the graph stores them)."""

    def __init__(self, prompts: RAPPrompts, depth: int = 5, n_shots: int = 4, seed: int = 0) -> None:
        if depth < 1 or not prompts.examples:
            raise ValueError(f"need depth >= 1 and some interactive examples, got {depth} and {len(prompts.examples)}")
        self.prompts, self.depth, self.seed = prompts, depth, seed
        self.n_shots = min(n_shots, len(prompts.examples))

    def provenance(self) -> dict[str, Any]:
        return {"rap_prompts": self.prompts.source, "rap_shots": self.n_shots}

    def initial_state(self, problem: Any) -> dict[str, Any]:
        fields = question_and_gold(problem)
        rng = random.Random(sub_seed(self.seed, "rap-shots", fields["question"]))
        return {**fields, "shots": rng.sample(range(len(self.prompts.examples)), self.n_shots), "subs": []}

    # -- prompts ---------------------------------------------------------------------------------

    def _so_far(self, state: dict[str, Any]) -> tuple[str, int]:
        """The prompt up to the next sub-question's number, and the problem's own number (after the examples)."""
        p, n = self.prompts, len(state["shots"]) + 1
        text = p.instruction + "\n\n" + "".join(p.examples[i].format(idx=j + 1) + "\n\n"
                                                for j, i in enumerate(state["shots"]))
        text += p.question_prefix.format(idx=n, question=state["question"]) + "\n"
        for j, sub in enumerate(state["subs"]):
            text += (p.subquestion_prefix.format(idx=n, sub_idx=j + 1) + " " + sub["q"] + "\n"
                     + p.answer_prefix.format(idx=n, sub_idx=j + 1) + " " + sub["a"] + "\n")
        return text, n

    def at_depth_limit(self, state: dict[str, Any]) -> bool:
        return len(state["subs"]) + 1 >= self.depth

    def prompt(self, state: dict[str, Any]) -> str:
        """Where the generator writes the next sub-question."""
        text, n = self._so_far(state)
        text += self.prompts.subquestion_prefix.format(idx=n, sub_idx=len(state["subs"]) + 1)
        return text + (" " + self.prompts.overall_question_prefix if self.at_depth_limit(state) else "")

    def answer_prompt(self, state: dict[str, Any], sub_question: str) -> str:
        """Where the generator writes the answer to ``sub_question`` (the world model's prompt)."""
        text, n = self._so_far(state)
        k = len(state["subs"]) + 1
        return (text + self.prompts.subquestion_prefix.format(idx=n, sub_idx=k) + " " + sub_question + "\n"
                + self.prompts.answer_prefix.format(idx=n, sub_idx=k))

    def self_eval_query(self, state: dict[str, Any], action: str) -> tuple[str, str, str | None]:
        """RAP's "Is the new question useful?" prompt; its fast reward is P(Yes) against P(No)."""
        p = self.prompts
        text = p.useful_input + p.useful_question_prefix + state["question"] + "\n"
        for j, sub in enumerate(state["subs"]):
            text += p.useful_subquestion_prefix.format(j + 1) + " " + sub["q"] + "\n"
        text += p.useful_new_prefix.format(len(state["subs"]) + 1) + " " + action + "\n" + p.useful_prefix
        return text, " Yes", " No"

    def sub_question(self, state: dict[str, Any], text: str) -> str:
        """A generated sub-question as RAP keeps it: led into the final question at the depth limit, and the final
        question written as the problem's own."""
        prefix, overall = self.prompts.overall_question_prefix, overall_question(state["question"])
        text = " ".join(text.split())
        if self.at_depth_limit(state):
            text = f"{prefix} {text}"
        if prefix in text or text.lower() == overall.lower():
            text = f"{prefix} {overall}"
        return text

    # -- states ------------------------------------------------------------------------------------

    def describe(self, state: dict[str, Any]) -> str:
        return render_context(state["question"], [f"{sub['q']} {sub['a']}" for sub in state["subs"]])

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        raise ValueError("a RAP sub-question is answered by the generator: search with the sub-answer world model")

    def answered(self, state: dict[str, Any], sub_question: str, answer: str) -> dict[str, Any]:
        return {**state, "subs": [*state["subs"], {"q": sub_question, "a": " ".join(answer.split())}]}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return bool(state["subs"]) and self.prompts.overall_question_prefix in state["subs"][-1]["q"]

    def answer(self, state: dict[str, Any]) -> str | None:
        return extract_answer(state["subs"][-1]["a"]) if self.is_terminal(state) else None


@dataclass(frozen=True)
class SubQuestionProposer:
    """RAP's proposals: ``k`` sub-questions sampled at ``temperature`` in one call, or one greedy call at the depth
    limit; each kept as ``GSM8KRAPTask.sub_question`` rewrites it."""

    k: int = 4
    temperature: float = 0.8
    max_new_tokens: int = 48
    name: str = "sample"
    uses_generator: bool = True

    def propose(self, task: GSM8KRAPTask, state: Any, generator: Generator | None, *, node_id: int,
                seed: int | None) -> Proposal:
        if generator is None:
            raise ValueError("sub-question proposals need a generator")
        final = task.at_depth_limit(state)
        prompt = task.prompt(state)
        out = generator.propose(prompt, 1 if final else self.k, temperature=0.0 if final else self.temperature,
                                max_new_tokens=self.max_new_tokens, stop=["\n"], seed=sub_seed(seed, "propose", node_id))
        candidates = [{"text": task.sub_question(state, c.text), "logprob": c.logprob,
                       "num_tokens": max(1, c.num_tokens)} for c in out[: 1 if final else self.k] if final or c.text.strip()]
        return Proposal(candidates, out.usage, prompt)
