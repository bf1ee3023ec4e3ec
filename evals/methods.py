"""The evaluation's methods: each baseline configured as its authors' code runs it, each SRM search its twin.

A method is a search family (how the tree is searched) plus an evaluator (who judges the candidates):

| family | strategy (llm-reasoners' settings)                                  | proposals                  |
| ------ | ------------------------------------------------------------------- | -------------------------- |
| bfs    | beam of 10 over all children, ranked by the mean reward of the path | k per expansion            |
| dfs    | DFS, total_states=10, max_per_state=3, children in prior order      | k per expansion            |
| mcts   | MCTS, 10 iterations, w_exp 1, RAP's reward (alpha 0.5, goal 100)    | every legal action         |

``tot-bfs``/``tot-dfs``/``rap-mcts`` judge with self-evaluation (intuition + log P("good")), ``srm-*`` with the
SRM's speculative rule, ``random-*`` with random rewards at no cost (the floor breadth alone reaches).
Twins differ only in the evaluator: same proposals, budgets, world model and goal test. ``cot`` is one
chain from the plan prompt (k=1, the generator's own preference). A domain whose baselines search their own way
adjusts a method's settings (``TaskSpec.configure_method``): on GSM8K the mcts family searches RAP's sub-questions
with its "useful?" reward and sampled answers, and ``cot`` is llm-reasoners' greedy 4-shot CoT.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

FAMILIES = ("bfs", "dfs", "mcts")
BASELINE_OF = {"bfs": "tot-bfs", "dfs": "tot-dfs", "mcts": "rap-mcts"}
JUDGES = ("self_eval", "srm", "random")


@dataclass(frozen=True)
class Method:
    name: str
    family: str | None  # None: chain of thought
    evaluator: str  # "self_eval", "srm", "random" or "prior"

    @property
    def twin(self) -> str | None:
        """The baseline this method is the twin of (the same search judged by the generator itself)."""
        if self.family is None or self.evaluator == "self_eval":
            return None
        return BASELINE_OF[self.family]


def _methods() -> dict[str, Method]:
    out = {"cot": Method("cot", None, "prior")}
    for family in FAMILIES:
        out[BASELINE_OF[family]] = Method(BASELINE_OF[family], family, "self_eval")
    for prefix, evaluator in (("srm", "srm"), ("random", "random")):
        for family in FAMILIES:
            out[f"{prefix}-{family}"] = Method(f"{prefix}-{family}", family, evaluator)
    return out


METHODS: dict[str, Method] = _methods()
BASELINES = tuple(name for name, m in METHODS.items() if m.evaluator in ("self_eval", "prior"))


def method_names(text: str) -> list[str]:
    """A comma-separated list of known methods, each once, in the given order (an argparse type)."""
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


@dataclass(frozen=True)
class SearchSettings:
    """The settings every method shares in one run (each is recorded in the run's config)."""

    k: int = 4
    beam: int = 10
    dfs_states: int = 10
    dfs_per_state: int = 3
    mcts_iters: int = 10
    proposals: str = "enumerate"
    goal_test: str = "every-step"
    temperature: float = 0.8
    max_expansions: int | None = None
    seed: int = 0
    alpha: float = 0.5
    mode: str = "stochastic"
    ratio: str = "srm_over_llm"
    consistency: bool = True


def search_kwargs(method: str, settings: SearchSettings, depth: int) -> dict[str, Any]:
    """``build_tree_search`` keyword arguments for ``method`` at search depth ``depth``."""
    m = METHODS[method]
    kwargs: dict[str, Any] = {"max_depth": depth, "proposals": settings.proposals, "goal_test": settings.goal_test,
                              "temperature": settings.temperature, "max_expansions": settings.max_expansions,
                              "seed": settings.seed, "evaluator": m.evaluator, "k": settings.k}
    if m.family is None:
        kwargs.update(strategy="dfs", k=1)
    elif m.family == "bfs":
        kwargs.update(strategy="beam", strategy_options={"width": settings.beam, "aggregate": "mean"})
    elif m.family == "dfs":
        kwargs.update(strategy="dfs", strategy_options={"total_states": settings.dfs_states,
                                                        "max_per_state": settings.dfs_per_state,
                                                        "max_terminals": 10})
    else:
        kwargs.update(strategy="mcts", strategy_options={"iterations": settings.mcts_iters, "w_exp": 1.0,
                                                         "reward_alpha": 0.5, "goal_reward": 100.0})
        if settings.proposals == "enumerate":
            kwargs["k"] = None  # RAP: every legal action is a child
    if m.evaluator == "self_eval":
        # the originals score a sampled action's intuition with a call of its own; an enumerated one has it already
        kwargs["evaluator_options"] = {"intuition": "rescore" if settings.proposals == "sample" else "proposal"}
    if m.evaluator == "srm":
        kwargs.update(alpha=settings.alpha, mode=settings.mode, ratio=settings.ratio, consistency=settings.consistency)
    return kwargs


class NoisySRM:
    """An SRM whose logits carry Gaussian noise of standard deviation ``sigma`` (the verifier-noise ablation).

    The noise of a pair is fixed by the seed and the pair itself, so a cached score and a recomputed one agree.
    """

    def __init__(self, inner: Any, sigma: float, seed: int = 0) -> None:
        if not sigma >= 0:
            raise ValueError(f"sigma must be >= 0, got {sigma!r}")
        self.inner, self.sigma, self.seed = inner, sigma, seed
        self.fingerprint = f"{inner.fingerprint}+noise{sigma:g}@{seed}"
        self.head_trained = getattr(inner, "head_trained", True)

    def score(self, state: str, actions: Sequence[str]) -> list[float]:
        import hashlib

        import numpy as np

        out = []
        for action, logit in zip(actions, self.inner.score(state, actions)):
            digest = hashlib.sha256(f"{self.seed}\x00{state}\x00{action}".encode()).digest()
            out.append(float(logit) + self.sigma * float(np.random.default_rng(list(digest[:16])).normal()))
        return out
