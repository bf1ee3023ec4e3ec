"""Depth-first search as llm-reasoners' ``DFS`` runs it (ToT-DFS: ``total_states=10``, ``max_per_state=3``).

Children are followed best first (the evaluator's order, i.e. by prior/reward), at most ``max_per_state``
of each state; following a child uses one of ``total_states``; a leaf (terminal or at the depth limit) is
recorded, and the search stops after ``max_terminals`` leaves. The answer is the leaf with the largest
sum of rewards along its path. ``None`` lifts a limit.
"""

from __future__ import annotations

from typing import Any

from srm_agent.search.strategies.base import SearchContext
from srm_agent.search.tree import Tree


class DFS:
    name = "dfs"
    eager = True

    def __init__(self, total_states: int | None = None, max_per_state: int | None = None,
                 max_terminals: int | None = None) -> None:
        for name, value in (("total_states", total_states), ("max_per_state", max_per_state),
                            ("max_terminals", max_terminals)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1 or None, got {value!r}")
        self.total_states, self.max_per_state, self.max_terminals = total_states, max_per_state, max_terminals

    def start(self, tree: Tree, ctx: SearchContext) -> None:
        tree.push("stack", [0])

    def select(self, tree: Tree, ctx: SearchContext) -> int | None:
        while (node_id := tree.pop_back("stack")) is not None:
            node = tree[node_id]
            if node["parent"] is not None:
                followed = tree.meta("states", 0)
                if self.total_states is not None and followed >= self.total_states:
                    return None
                tree.set_meta("states", followed + 1)
            if ctx.expandable(node):
                return node_id
            if ctx.is_leaf(node):
                tree.push("leaves", [node_id])
                if self.max_terminals is not None and len(tree.items("leaves")) >= self.max_terminals:
                    return None
        return None

    def update(self, tree: Tree, parent: int, children: list[int], ctx: SearchContext) -> None:
        followed = [c for c in children if not tree[c]["invalid"]][: self.max_per_state]
        tree.push("stack", reversed(followed))  # the best is popped first

    def result(self, tree: Tree, ctx: SearchContext) -> int | None:
        leaves = list(tree.items("leaves"))
        return max(leaves, key=lambda n: (tree[n]["reward_sum"], -n)) if leaves else None

    def options(self) -> dict[str, Any]:
        return {"total_states": self.total_states, "max_per_state": self.max_per_state,
                "max_terminals": self.max_terminals}
