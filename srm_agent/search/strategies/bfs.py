"""Breadth-first search: a queue of accepted nodes, each expanded in the order it was accepted."""

from __future__ import annotations

from typing import Any

from srm_agent.search.strategies.base import SearchContext
from srm_agent.search.tree import Tree


class BFS:
    name = "bfs"
    eager = True

    def start(self, tree: Tree, ctx: SearchContext) -> None:
        tree.push("queue", [0])

    def select(self, tree: Tree, ctx: SearchContext) -> int | None:
        while (node_id := tree.pop_front("queue")) is not None:
            if ctx.expandable(tree[node_id]):
                return node_id
        return None

    def update(self, tree: Tree, parent: int, children: list[int], ctx: SearchContext) -> None:
        tree.push("queue", [c for c in children if ctx.expandable(tree[c])])

    def result(self, tree: Tree, ctx: SearchContext) -> int | None:
        return None

    def options(self) -> dict[str, Any]:
        return {}
