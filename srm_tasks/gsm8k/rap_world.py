"""RAP's GSM8K world model: the generator answers each sub-question, and its agreement is the confidence.

llm-reasoners' ``GSM8kWorldModel`` samples up to ``n_confidence=8`` answers, ``early_stop_base=2`` at a time;
after each pair it stops when the most frequent final answer holds at least ``early_stop_threshold=0.5`` of the
samples so far and is not tied with the next; answers are grouped by the number they state (a sample stating
none is a group of its own, as there). The state takes the first sample of the largest group, and the
confidence is that group's share. The SRM twin's world (``samples=1``, greedy, ``report_confidence=False``)
answers once and leaves the judging to the SRM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from srm_agent.generators.base import Generator, Usage
from srm_agent.search.proposers import sub_seed
from srm_agent.search.world import WorldStep
from srm_tasks.gsm8k.answers import extract_answer


@dataclass(frozen=True)
class SubAnswerWorld:
    """Answers ``GSM8KRAPTask`` sub-questions; ``aux["confidence"]`` is the majority share (see the module)."""

    generator: Generator
    samples: int = 8
    per_call: int = 2
    temperature: float = 0.8
    threshold: float = 0.5
    max_new_tokens: int = 96
    report_confidence: bool = True
    seed: int | None = 0
    name: str = "sub_answers"
    exact: bool = True  # the answers are the chain itself: there are no other dynamics to replay it through

    def __post_init__(self) -> None:
        if not (isinstance(self.samples, int) and isinstance(self.per_call, int) and self.samples >= self.per_call >= 1):
            raise ValueError(f"need samples >= per_call >= 1, got {self.samples!r} and {self.per_call!r}")

    def sample_answers(self, prompt: str) -> tuple[str, float, Usage]:
        """(the answer kept, its confidence, what the calls cost)."""
        groups: dict[str | None, list[str]] = {}
        usage, drawn = Usage(), 0
        while drawn < self.samples:
            n = min(self.per_call, self.samples - drawn)
            out = self.generator.propose(prompt, n, temperature=self.temperature, max_new_tokens=self.max_new_tokens,
                                         stop=["\n"], seed=sub_seed(self.seed, "answer", prompt, drawn))
            usage, drawn = usage + out.usage, drawn + n
            for candidate in out[:n]:
                text = candidate.text.strip()
                groups.setdefault(extract_answer(text), []).append(text)
            sizes = sorted((len(g) for g in groups.values()), reverse=True)
            if sizes[0] / drawn >= self.threshold and (len(sizes) < 2 or sizes[1] < sizes[0]):
                break
        top = max(groups.values(), key=len)  # the first-seen of the largest groups, as RAP's stable sort keeps
        return top[0], len(top) / drawn, usage

    def step(self, task: Any, state: Any, action: str) -> WorldStep:
        answer, confidence, usage = self.sample_answers(task.answer_prompt(state, action))
        return WorldStep(task.answered(state, action, answer), usage,
                         {"confidence": confidence} if self.report_confidence else {})
