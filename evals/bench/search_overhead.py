"""``python -m evals.bench.search_overhead``: what the search itself costs per expansion as its tree grows.

With instant models (a generator and an SRM that answer at once) every second is the search's own: the
strategy, the tree's deltas, the engine, and LangGraph's supersteps (and a checkpointer's writes, with
``--checkpointer``). An endless 4-way task keeps the tree growing; each expansion's time is taken at
its evaluation. Printed: ms per expansion over the first and the last 300 of 1,200 expansions (and
their ratio), and at 100 and at 2,000 nodes, for the LangGraph graph and for the same steps in a plain
loop (``run_search``), for bfs and mcts. A script that prints figures, not a test: compare the ratios
of one run.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from typing import Any

from srm_agent.console import HelpFormatter
from srm_agent.generators.base import Generation, Usage
from srm_agent.rule import Candidate
from srm_agent.search import SearchConfig, build_tree_search, run_search
from srm_agent.search.evaluators.base import EvalContext, Evaluation
from srm_agent.search.evaluators.srm import SRMEvaluator

ACTIONS = ("left", "right", "up", "down")


class EndlessTask:
    """Four moves from every state, never solved: the tree only grows."""

    name = "endless"
    goal_visible = True

    def initial_state(self, problem: Any) -> dict[str, Any]:
        return {"moves": 0}

    def prompt(self, state: dict[str, Any]) -> str:
        return f"move {state['moves']}:"

    def describe(self, state: dict[str, Any]) -> str:
        return f"after {state['moves']} moves"

    def legal_actions(self, state: dict[str, Any]) -> list[str]:
        return list(ACTIONS)

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        return {"moves": state["moves"] + 1}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return False

    def is_solved(self, state: dict[str, Any]) -> bool:
        return False

    def goal_progress(self, state: dict[str, Any]) -> float:
        return 0.0

    def answer(self, state: dict[str, Any]) -> str | None:
        return None

    def self_eval_query(self, state: dict[str, Any], action: str) -> tuple[str, str, str | None]:
        return "", " yes", None


class InstantGenerator:
    def score_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        return Generation([Candidate(c, -1.0 - 0.1 * i, 1) for i, c in enumerate(choices)], Usage(1, 4, 0))

    def propose(self, prompt: str, k: int, **sampling: Any) -> Generation:
        return Generation([Candidate(ACTIONS[i % 4], -1.0, 1) for i in range(k)], Usage(1, 4, k))


class InstantSRM:
    fingerprint = "instant"

    def score(self, state: str, actions: Sequence[str]) -> list[float]:
        return [float(len(a)) for a in actions]


class Clocked:
    """The SRM evaluator, noting when each expansion is judged (once per expansion)."""

    name = "srm"

    def __init__(self) -> None:
        self.inner = SRMEvaluator(InstantSRM(), mode="threshold", threshold=0.0)
        self.times: list[float] = []

    def evaluate(self, ctx: EvalContext, candidates: Sequence[dict[str, Any]]) -> Evaluation:
        self.times.append(time.perf_counter())
        return self.inner.evaluate(ctx, candidates)


def measure(strategy: str, expansions: int, *, graph: bool, checkpointer: bool) -> tuple[list[float], int]:
    """Per-expansion seconds of one search of ``expansions`` expansions, and the nodes it made."""
    clock = Clocked()
    options = {"iterations": 10 ** 9} if strategy == "mcts" else {}
    kwargs = dict(strategy=strategy, evaluator=clock, k=4, max_depth=10 ** 6 if strategy != "mcts" else 30,
                  max_expansions=expansions, strategy_options=options, goal_test="end", seed=0)
    started = time.perf_counter()
    if graph:
        saver = None
        if checkpointer:
            from langgraph.checkpoint.memory import InMemorySaver

            saver = InMemorySaver()
        search = build_tree_search(EndlessTask(), InstantGenerator(), checkpointer=saver, **kwargs)
        final = search.invoke({"problem": {}}, {"configurable": {"thread_id": "bench"}})
        size = final["tree"]["size"]
    else:
        from srm_agent.search.graph import make_strategy
        from srm_agent.search.proposers import make_proposer
        from srm_agent.search.world import ExactWorld

        config = SearchConfig(task=EndlessTask(), generator=InstantGenerator(), proposer=make_proposer(k=4),
                              evaluator=clock, strategy=make_strategy(strategy, options), world=ExactWorld(),
                              max_depth=kwargs["max_depth"], max_expansions=expansions, goal_test="end")
        _, tree = run_search(config, {})
        size = len(tree)
    times = [started, *clock.times]
    return [b - a for a, b in zip(times, times[1:])], size


def ms(seconds: Sequence[float]) -> float:
    return 1000 * sum(seconds) / max(len(seconds), 1)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.search_overhead", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--expansions", type=int, default=1200, help="expansions per search (default: 1200)")
    parser.add_argument("--window", type=int, default=300, help="expansions per compared window (default: 300)")
    parser.add_argument("--checkpointer", action="store_true", help="also run the graph with an InMemorySaver")
    args = parser.parse_args(argv)
    if not 0 < args.window <= args.expansions // 2:
        parser.error("--window must be between 1 and half of --expansions")
    runs = [("graph", True, False), ("plain loop", False, False)]
    if args.checkpointer:
        runs.insert(1, ("graph + checkpointer", True, True))
    print(f"{'strategy':<8} {'runner':<21} {'nodes':>6} {'first ms':>9} {'last ms':>8} {'last/first':>10} "
          f"{'ms @100 nodes':>13} {'ms @2000 nodes':>14}")
    for strategy in ("bfs", "mcts"):
        for label, graph, checkpointer in runs:
            per, size = measure(strategy, args.expansions, graph=graph, checkpointer=checkpointer)
            first, last = per[1: args.window + 1], per[-args.window:]  # the first includes start-up: skip it
            at = {n: per[max(1, n // 4 - 50): n // 4 + 50] for n in (100, 2000)}
            print(f"{strategy:<8} {label:<21} {size:>6} {ms(first):>9.2f} {ms(last):>8.2f} "
                  f"{ms(last) / ms(first):>10.2f} {ms(at[100]):>13.2f} {ms(at[2000]):>14.2f}", flush=True)
    print("ms: milliseconds per expansion with instant models (the search's own cost); nodes: the tree's size at "
          "the end; @N nodes: around the expansion where the tree held N nodes (4 children per expansion)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
