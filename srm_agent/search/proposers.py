"""Proposers: where a search's candidate actions come from.

- ``enumerate`` (where the task lists its legal actions): all of them scored by one shared-prefix
  ``score_choices`` call; ``k`` of them drawn without replacement in proportion to the generator's
  length-normalised probability (Gumbel top-k), or all of them with ``k=None`` (RAP's children).
  A task without a list of legal actions is sampled instead.
- ``sample``: ``k`` free-text continuations at ``temperature`` (Tree-of-Thoughts' proposals); an
  action the task cannot take becomes an invalid child.
- ``uniform``: every legal action with an equal prior and no generator at all (training rollouts).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from srm_agent.generators.base import Generator, Usage
from srm_agent.search.task import Task

PROPOSALS = ("enumerate", "sample", "uniform")


def sub_seed(seed: int | None, *parts: Any) -> int | None:
    """A seed for one part of a search (a node's proposal, say), fixed by the search's seed."""
    if seed is None:
        return None
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


@dataclass(frozen=True)
class Proposal:
    """Candidates as dicts ``{text, logprob, num_tokens}`` (untempered log-probs) and what they cost."""

    candidates: list[dict[str, Any]]
    usage: Usage = field(default_factory=Usage)
    prompt: str | None = None


@runtime_checkable
class Proposer(Protocol):
    name: str
    uses_generator: bool

    def propose(self, task: Task, state: Any, generator: Generator | None, *, node_id: int,
                seed: int | None) -> Proposal:
        ...


def draw_without_replacement(logp: np.ndarray, k: int, seed: int | None) -> list[int]:
    """``k`` indices drawn without replacement with probability proportional to exp(logp) (Gumbel top-k)."""
    gumbel = np.random.default_rng(seed).gumbel(size=len(logp))
    return [int(i) for i in np.argsort(-(logp + gumbel))[: min(k, len(logp))]]


@dataclass(frozen=True)
class GeneratorProposer:
    """``enumerate`` or ``sample`` proposals from the generator (see the module docstring)."""

    mode: str = "enumerate"
    k: int | None = 4
    temperature: float = 0.8
    max_new_tokens: int = 48
    stop: tuple[str, ...] = ("\n",)
    uses_generator: bool = True

    def __post_init__(self) -> None:
        if self.mode not in ("enumerate", "sample"):
            raise ValueError(f"mode must be 'enumerate' or 'sample', got {self.mode!r}")
        if self.k is not None and (not isinstance(self.k, int) or self.k < 1):
            raise ValueError(f"k must be an integer >= 1 (or None for every legal action), got {self.k!r}")
        if self.k is None and self.mode == "sample":
            raise ValueError("k=None (every legal action) needs mode='enumerate'")

    @property
    def name(self) -> str:
        return self.mode

    def propose(self, task: Task, state: Any, generator: Generator | None, *, node_id: int,
                seed: int | None) -> Proposal:
        if generator is None:
            raise ValueError(f"{self.mode} proposals need a generator")
        prompt = task.prompt(state)
        actions = task.legal_actions(state) if self.mode == "enumerate" else None
        if actions is None:
            proposed = generator.propose(prompt, self.k or 1, temperature=self.temperature,
                                         max_new_tokens=self.max_new_tokens, stop=list(self.stop),
                                         seed=sub_seed(seed, "propose", node_id))
            return Proposal([{"text": c.text, "logprob": c.logprob, "num_tokens": c.num_tokens}
                             for c in proposed if c.text.strip()], proposed.usage, prompt)
        if not actions:
            return Proposal([], Usage(), prompt)
        lead = "" if prompt[-1:].isspace() else " "
        scored = generator.score_choices(prompt, [lead + a for a in actions])
        if self.k is None:
            picks = list(range(len(actions)))
        else:
            logp = np.array([c.logprob / c.num_tokens for c in scored])
            picks = draw_without_replacement(logp, self.k, sub_seed(seed, "draw", node_id))
        return Proposal([{"text": actions[i], "logprob": scored[i].logprob, "num_tokens": scored[i].num_tokens}
                         for i in picks], scored.usage, prompt)


@dataclass(frozen=True)
class UniformProposer:
    """Every legal action, equal prior, no generator (for rollouts that must not depend on a model)."""

    name: str = "uniform"
    uses_generator: bool = False

    def propose(self, task: Task, state: Any, generator: Generator | None, *, node_id: int,
                seed: int | None) -> Proposal:
        actions = task.legal_actions(state)
        if actions is None:
            raise ValueError(f"uniform proposals need a task that lists its legal actions ({task.name} does not)")
        return Proposal([{"text": a, "logprob": 0.0, "num_tokens": 1} for a in actions])


def make_proposer(proposals: str = "enumerate", *, k: int | None = 4, temperature: float = 0.8,
                  max_new_tokens: int = 48, stop: list[str] | tuple[str, ...] | None = None) -> Proposer:
    if proposals == "uniform":
        return UniformProposer()
    if proposals not in PROPOSALS:
        raise ValueError(f"proposals must be one of {', '.join(PROPOSALS)}, got {proposals!r}")
    return GeneratorProposer(proposals, k, temperature, max_new_tokens, tuple(["\n"] if stop is None else stop))
