"""The baselines behave as their authors' code runs them, and each SRM search differs from its twin only in the
evaluator (tiny models, the toy and Blocksworld tasks)."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from evals.methods import METHODS, SearchSettings, search_kwargs
from srm_agent.search import build_tree_search
from srm_agent.search.evaluators import Evaluation, ranked_verdict
from srm_agent.search.tree import nodes_of
from srm_tasks.toy import ReachNumber

TASK = ReachNumber()
PROBLEM = {"start": 1, "target": 400}  # out of reach at depth 3: every search spends its whole budget


class ConstantJudge:
    """Every candidate gets the same low score: an evaluator no threshold would let through."""

    name = "constant_judge"

    def evaluate(self, ctx, candidates):
        texts = list(dict.fromkeys(c["text"] for c in candidates))
        return Evaluation(ranked_verdict(candidates, [-1e6] * len(texts)))


def expanded_per_depth(final: dict[str, Any]) -> Counter:
    return Counter(n["depth"] for n in nodes_of(final["tree"]) if n["expanded"])


def test_a_beam_keeps_width_nodes_per_level_whatever_the_scores(tiny_generator):
    """ToT-BFS prunes nothing by a threshold: a beam of 2 over 3 children per node holds 2 nodes per level."""
    graph = build_tree_search(TASK, tiny_generator, strategy="beam", evaluator=ConstantJudge(), k=3, max_depth=4,
                              strategy_options={"width": 2}, goal_test="end", max_expansions=None)
    per_depth = expanded_per_depth(graph.invoke({"problem": PROBLEM}))
    assert per_depth == {0: 1, 1: 2, 2: 2, 3: 2}


def settings(**overrides: Any) -> SearchSettings:
    return SearchSettings(k=3, beam=2, dfs_states=4, dfs_per_state=2, mcts_iters=2, **overrides)


def run_method(method: str, generator, srm=None, depth: int = 3, **overrides: Any) -> dict[str, Any]:
    graph = build_tree_search(TASK, generator, srm, **search_kwargs(method, settings(**overrides), depth))
    return graph.invoke({"problem": PROBLEM})


class SamplesLegalText:
    """The tiny generator, except that its samples are legal moves of the toy task (as a trained model's would be)."""

    def __init__(self, inner) -> None:
        self.inner = inner

    def propose(self, prompt, k, **sampling):
        from srm_agent.generators import Generation, Usage
        from srm_agent.rule import Candidate

        moves = ["add 1", "add 3", "double"]
        return Generation([Candidate(moves[(len(prompt) + i) % 3], -1.5, 2) for i in range(k)], Usage(1, 10, 2 * k))

    def score_choices(self, prompt, choices):
        return self.inner.score_choices(prompt, choices)


def test_tot_bfs_calls_per_expansion_are_the_originals(tiny_generator):
    sampled = run_method("tot-bfs", SamplesLegalText(tiny_generator), proposals="sample")
    usage = sampled["result"]["usage"]
    judged = sum(1 for n in nodes_of(sampled["tree"]) if n["decision"])  # distinct candidates judged
    # ToT samples once per expansion, then per candidate one intuition and one self-evaluation call
    assert usage["proposal"]["calls"] == usage["expansions"] > 1
    assert usage["evaluation"]["calls"] == 2 * judged > 0
    enumerated = run_method("tot-bfs", tiny_generator)
    usage = enumerated["result"]["usage"]
    judged = sum(1 for n in nodes_of(enumerated["tree"]) if n["decision"])
    # enumerated legal actions carry their intuition from the proposal's own scoring: one call per candidate
    assert usage["proposal"]["calls"] == usage["expansions"] and usage["evaluation"]["calls"] == judged
    assert expanded_per_depth(enumerated) == {0: 1, 1: 2, 2: 2}  # the beam of 2, to the depth limit


def test_tot_dfs_follows_at_most_max_per_state_and_total_states(tiny_generator):
    final = run_method("tot-dfs", tiny_generator, depth=4)
    nodes = nodes_of(final["tree"])
    assert final["tree"]["meta"]["states"] == 4  # dfs_states: the search stopped when they were used up
    assert 1 < sum(n["expanded"] for n in nodes) <= 1 + 4
    assert all(sum(1 for c in nodes if c["parent"] == n["id"] and c["expanded"]) <= 2 for n in nodes)


def test_rap_mcts_children_are_every_legal_action(tiny_generator):
    final = run_method("rap-mcts", tiny_generator)
    nodes = nodes_of(final["tree"])
    for node in nodes:
        if node["expanded"]:
            kids = sorted(c["action"] for c in nodes if c["parent"] == node["id"])
            assert kids == sorted(TASK.legal_actions(node["task_state"]))
    assert final["tree"]["meta"]["iteration"] == 2


class Flat:
    fingerprint = "flat"

    def score(self, state, actions):
        return [0.0] * len(actions)


@pytest.mark.parametrize("family", ["bfs", "dfs", "mcts"])
def test_twins_see_the_same_proposals_with_the_same_budget(tiny_generator, family):
    """srm-X and its baseline differ only in the evaluator: the same candidates are proposed at the root, with the
    same proposal calls per expansion, under the same strategy settings."""
    baseline, twin = METHODS[f"srm-{family}"].twin, f"srm-{family}"
    ours, theirs = run_method(twin, tiny_generator, Flat()), run_method(baseline, tiny_generator)

    def root_candidates(final):
        return [(n["action"], round(n["decision"]["logprob"], 4)) for n in nodes_of(final["tree"]) if n["parent"] == 0]

    assert root_candidates(ours) == root_candidates(theirs)
    for final in (ours, theirs):
        usage = final["result"]["usage"]
        assert usage["proposal"]["calls"] == usage["expansions"]
    assert ours["result"]["usage"]["evaluation"]["calls"] == 0 < theirs["result"]["usage"]["evaluation"]["calls"]
