"""Monte Carlo tree search as llm-reasoners' ``MCTS`` runs RAP (``n_iters=10, w_exp=1, cum_reward=sum,
calc_q=mean, simulate_strategy='max', output_strategy='max_reward'``).

Each iteration selects by UCT from the root (an unvisited child's Q is its fast reward), expands the
node it reaches, then simulates: it keeps following the child with the largest fast reward, expanding
each, until a leaf (terminal or at the depth limit); then every node on the path gets the sum of the
rewards from it to the end of the path, and Q is the mean of what a node got. A child's state is
computed only when it is first visited (``eager = False``), so a predicting world model is asked
only about visited nodes. The answer is the leaf path with the largest summed reward.

A visited node's reward is RAP's: ``alpha * fast_reward + (1 - alpha) * goal``, where goal is
``goal_reward`` (100) when the state meets the goal and otherwise the share of the goal met; with the
goal hidden (GSM8K) it is the fast reward.
"""

from __future__ import annotations

import math
from typing import Any

from srm_agent.search.strategies.base import SearchContext
from srm_agent.search.tree import Tree


class MCTS:
    name = "mcts"
    eager = False

    def __init__(self, iterations: int = 10, w_exp: float = 1.0, reward_alpha: float = 0.5,
                 goal_reward: float = 100.0) -> None:
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not (w_exp >= 0 and 0 <= reward_alpha <= 1):
            raise ValueError(f"need w_exp >= 0 and 0 <= reward_alpha <= 1, got {w_exp!r} and {reward_alpha!r}")
        self.iterations, self.w_exp = iterations, w_exp
        self.reward_alpha, self.goal_reward = reward_alpha, goal_reward

    def options(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "w_exp": self.w_exp, "reward_alpha": self.reward_alpha,
                "goal_reward": self.goal_reward}

    # -- rewards and values ----------------------------------------------------------------------

    def visit(self, tree: Tree, node_id: int, ctx: SearchContext) -> dict[str, Any]:
        """Step a node on its first visit and give it its reward."""
        node = tree[node_id]
        if node["materialized"]:
            return node
        node = ctx.materialize(tree, node_id)
        if node["invalid"]:
            return tree.update(node_id, reward=0.0)
        goal = ctx.goal_term(node)
        if goal is None:
            return tree.update(node_id, reward=node["fast_reward"])
        reached, share = goal
        goal_value = self.goal_reward if reached else share
        return tree.update(node_id, reward=self.reward_alpha * node["fast_reward"]
                           + (1 - self.reward_alpha) * goal_value)

    def q(self, node: dict[str, Any]) -> float:
        return node["value_sum"] / node["visits"] if node["visits"] else node["fast_reward"]

    def children(self, tree: Tree, node: dict[str, Any]) -> list[int]:
        return [c for c in node["children"] if tree[c]["decision"]["accepted"]]

    def uct_child(self, tree: Tree, node: dict[str, Any]) -> int:
        log_n = math.log(node["visits"]) if node["visits"] else float("-inf")

        def uct(child_id: int) -> tuple[float, int]:
            child = tree[child_id]
            explore = self.w_exp * math.sqrt(log_n / max(1, child["visits"])) if log_n > 0 else 0.0
            return self.q(child) + explore, -child_id

        return max(self.children(tree, node), key=uct)

    def done_with(self, node: dict[str, Any], ctx: SearchContext) -> bool:
        return bool(node["invalid"]) or ctx.is_leaf(node)

    def backpropagate(self, tree: Tree, path: list[int]) -> None:
        cum = 0.0
        for node_id in reversed(path):
            node = tree[node_id]
            cum += node["reward"] if node["reward"] is not None else 0.0
            tree.update(node_id, visits=node["visits"] + 1, value_sum=node["value_sum"] + cum)
        tree.set_meta("iteration", tree.meta("iteration", 0) + 1)
        tree.set_meta("path", None)

    # -- the strategy ------------------------------------------------------------------------------

    def start(self, tree: Tree, ctx: SearchContext) -> None:
        tree.set_meta("iteration", 0)
        tree.set_meta("path", None)

    def select(self, tree: Tree, ctx: SearchContext) -> int | None:
        while tree.meta("iteration", 0) < self.iterations:
            path = tree.meta("path")
            if path is None:  # a new iteration: select by UCT down to a node without children
                path = [0]
                node = tree[0]
                while node["expanded"] and self.children(tree, node) and not self.done_with(node, ctx):
                    path.append(self.uct_child(tree, node))
                    node = self.visit(tree, path[-1], ctx)
            else:  # simulating: follow the just-expanded node's child with the largest fast reward
                kids = self.children(tree, tree[path[-1]])
                if not kids:
                    self.backpropagate(tree, path)
                    continue
                path = [*path, max(kids, key=lambda c: (tree[c]["fast_reward"], -c))]
                node = self.visit(tree, path[-1], ctx)
            if self.done_with(node, ctx) or node["expanded"]:
                self.backpropagate(tree, path)
                if path == [0]:
                    return None  # the root itself cannot be expanded
                continue
            tree.set_meta("path", path)
            return path[-1]
        return None

    def update(self, tree: Tree, parent: int, children: list[int], ctx: SearchContext) -> None:
        """Nothing to do: the next ``select`` goes on simulating from ``parent``."""

    def result(self, tree: Tree, ctx: SearchContext) -> int | None:
        """The visited leaf whose path has the largest summed reward (RAP's ``max_reward`` output)."""
        best: tuple[float, int] | None = None
        stack = [(0, 0.0)]
        while stack:
            node_id, total = stack.pop()
            node = tree[node_id]
            if node_id and ctx.is_leaf(node) and not node["invalid"]:
                if best is None or (total, -node_id) > (best[0], -best[1]):
                    best = (total, node_id)
                continue
            for child_id in node["children"]:
                child = tree[child_id]
                if child["materialized"] and not child["invalid"]:
                    stack.append((child_id, total + (child["reward"] or 0.0)))
        return None if best is None else best[1]
