"""Beam search as llm-reasoners' ``BeamSearch`` runs ToT-BFS: level by level, the ``width`` best of all
children by their aggregated reward (``mean`` of the rewards along the path, or ``sum``, or ``last``).

Nothing is pruned but by rank. A leaf (terminal, or at the depth limit) takes its place in the beam and
is set aside when its level comes; the answer is the best leaf by the aggregated reward.
"""

from __future__ import annotations

from typing import Any

from srm_agent.search.strategies.base import SearchContext, path_mean
from srm_agent.search.tree import Tree

AGGREGATES = ("mean", "sum", "last")


class Beam:
    name = "beam"
    eager = True

    def __init__(self, width: int = 10, aggregate: str = "mean") -> None:
        if not isinstance(width, int) or width < 1:
            raise ValueError(f"width must be an integer >= 1, got {width!r}")
        if aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {aggregate!r}")
        self.width, self.aggregate = width, aggregate

    def score(self, node: dict[str, Any]) -> float:
        if self.aggregate == "mean":
            return path_mean(node)
        return node["reward_sum"] if self.aggregate == "sum" else node["reward"]

    def rank_key(self, tree: Tree, node_id: int) -> tuple[float, float, int]:
        node = tree[node_id]
        return -self.score(node), -node["prior"], node_id

    def start(self, tree: Tree, ctx: SearchContext) -> None:
        tree.set_list("level", [0])

    def select(self, tree: Tree, ctx: SearchContext) -> int | None:
        while True:
            node_id = tree.pop_front("level")
            if node_id is None:
                waiting = list(tree.items("next"))
                if not waiting:
                    return None
                tree.set_list("level", sorted(waiting, key=lambda n: self.rank_key(tree, n))[: self.width])
                tree.set_list("next", [])
                continue
            node = tree[node_id]
            if ctx.expandable(node):
                return node_id
            if ctx.is_leaf(node):
                tree.push("leaves", [node_id])

    def update(self, tree: Tree, parent: int, children: list[int], ctx: SearchContext) -> None:
        tree.push("next", [c for c in children if not tree[c]["invalid"]])

    def result(self, tree: Tree, ctx: SearchContext) -> int | None:
        leaves = list(tree.items("leaves"))
        return min(leaves, key=lambda n: self.rank_key(tree, n)) if leaves else None

    def options(self) -> dict[str, Any]:
        return {"width": self.width, "aggregate": self.aggregate}
