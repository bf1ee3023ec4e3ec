"""Monte Carlo tree search as llm-reasoners' ``MCTS`` runs RAP.

Each iteration selects by UCT from the root (an unvisited child's Q is its fast reward), expands the
node it reaches, then simulates: it keeps following the child with the largest fast reward, expanding
each, until a leaf (terminal or at the depth limit); then every node on the path gets the ``cum_reward``
(sum or mean) of the rewards from it to the end of the path, and Q is the ``calc_q`` (mean or max) of what a
node got. A child's state is computed only when it is first visited (``eager = False``), so a predicting
world model is asked only about visited nodes. The answer is the leaf path with the largest summed reward
(``output="max_reward"``), or the answer the tree's terminal nodes vote for (``"vote"``, llm-reasoners'
``MCTSAggregation('edge')``: an answer gets the reward of every visited node with it below).

A visited node's reward mixes the evaluator's fast reward with a term about its state, weighted by
``reward_alpha``: the goal term where the goal is visible (``goal_reward`` when the state meets it, else the
share met), else the world model's ``confidence`` (``aux``) or, without one, ``confidence_default``; with no
term at all it is the fast reward. ``reward_mix="linear"`` is RAP's Blocksworld reward,
``alpha * fast + (1 - alpha) * term``; ``"product"`` its GSM8K one, ``exp(fast)**alpha * term**(1 - alpha)``
(evaluators give log-rewards, so exp(fast) is P("Yes") for the "useful?" question). With a
``confidence_default`` an unvisited child's Q is its fast reward mixed with that default, as RAP's GSM8K
fast reward is. Blocksworld: ``cum_reward="sum", calc_q="mean"``; GSM8K: ``"mean"`` and ``"max"``.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from srm_agent.search.strategies.base import SearchContext
from srm_agent.search.tree import Tree

REWARD_MIXES = ("linear", "product")
CUM_REWARDS = ("sum", "mean")
CALC_QS = ("mean", "max")
OUTPUTS = ("max_reward", "vote")


class MCTS:
    name = "mcts"
    eager = False

    def __init__(self, iterations: int = 10, w_exp: float = 1.0, reward_alpha: float = 0.5,
                 goal_reward: float = 100.0, reward_mix: str = "linear", confidence_default: float | None = None,
                 cum_reward: str = "sum", calc_q: str = "mean", output: str = "max_reward") -> None:
        if not isinstance(iterations, int) or iterations < 1:
            raise ValueError(f"iterations must be an integer >= 1, got {iterations!r}")
        if not (w_exp >= 0 and 0 <= reward_alpha <= 1):
            raise ValueError(f"need w_exp >= 0 and 0 <= reward_alpha <= 1, got {w_exp!r} and {reward_alpha!r}")
        for value, allowed, what in ((reward_mix, REWARD_MIXES, "reward_mix"), (cum_reward, CUM_REWARDS, "cum_reward"),
                                     (calc_q, CALC_QS, "calc_q"), (output, OUTPUTS, "output")):
            if value not in allowed:
                raise ValueError(f"{what} must be one of {', '.join(allowed)}, got {value!r}")
        if confidence_default is not None and not 0 < confidence_default <= 1:
            raise ValueError(f"confidence_default must be in (0, 1], got {confidence_default!r}")
        self.iterations, self.w_exp = iterations, w_exp
        self.reward_alpha, self.goal_reward = reward_alpha, goal_reward
        self.reward_mix, self.confidence_default = reward_mix, confidence_default
        self.cum_reward, self.calc_q, self.output = cum_reward, calc_q, output

    def options(self) -> dict[str, Any]:
        return {"iterations": self.iterations, "w_exp": self.w_exp, "reward_alpha": self.reward_alpha,
                "goal_reward": self.goal_reward, "reward_mix": self.reward_mix,
                "confidence_default": self.confidence_default, "cum_reward": self.cum_reward, "calc_q": self.calc_q,
                "output": self.output}

    # -- rewards and values ----------------------------------------------------------------------

    def mix(self, fast: float, term: float | None) -> float:
        """The reward of a node with fast reward ``fast`` and state term ``term`` (None: the fast reward)."""
        if term is None:
            return fast
        if self.reward_mix == "linear":
            return self.reward_alpha * fast + (1 - self.reward_alpha) * term
        return math.exp(self.reward_alpha * fast) * max(term, 0.0) ** (1 - self.reward_alpha)

    def prior(self, node: dict[str, Any]) -> float:
        """An unvisited node's value: its fast reward, mixed with the default confidence where there is one."""
        return self.mix(node["fast_reward"], self.confidence_default)

    def visit(self, tree: Tree, node_id: int, ctx: SearchContext) -> dict[str, Any]:
        """Step a node on its first visit and give it its reward."""
        node = tree[node_id]
        if node["materialized"]:
            return node
        node = ctx.materialize(tree, node_id)
        if node["invalid"]:
            return tree.update(node_id, reward=0.0)
        goal = ctx.goal_term(node)
        if goal is not None:
            reached, share = goal
            term: float | None = self.goal_reward if reached else share
        else:
            term = (node.get("aux") or {}).get("confidence", self.confidence_default)
        return tree.update(node_id, reward=self.mix(node["fast_reward"], term))

    def q(self, node: dict[str, Any]) -> float:
        if not node["visits"]:
            return self.prior(node)
        return node["value_max"] if self.calc_q == "max" else node["value_sum"] / node["visits"]

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
        """Each node on the path gets the sum or mean of the rewards from it to the path's end."""
        total, count = 0.0, 0
        for node_id in reversed(path):
            node = tree[node_id]
            total, count = total + (node["reward"] if node["reward"] is not None else 0.0), count + 1
            cum = total if self.cum_reward == "sum" else total / count
            tree.update(node_id, visits=node["visits"] + 1, value_sum=node["value_sum"] + cum,
                        value_max=max(node.get("value_max", -math.inf), cum))
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
        return self.vote(tree, ctx) if self.output == "vote" else self.max_reward(tree, ctx)

    def max_reward(self, tree: Tree, ctx: SearchContext) -> int | None:
        """The visited leaf whose path has the largest ``cum_reward`` (RAP's ``max_reward`` output)."""
        best: tuple[float, int] | None = None
        stack = [(0, 0.0, 0)]
        while stack:
            node_id, total, depth = stack.pop()
            node = tree[node_id]
            if node_id and ctx.is_leaf(node) and not node["invalid"]:
                value = total if self.cum_reward == "sum" else total / depth
                if best is None or (value, -node_id) > (best[0], -best[1]):
                    best = (value, node_id)
                continue
            for child_id in node["children"]:
                child = tree[child_id]
                if child["materialized"] and not child["invalid"]:
                    stack.append((child_id, total + (child["reward"] or 0.0), depth + 1))
        return None if best is None else best[1]

    def vote(self, tree: Tree, ctx: SearchContext) -> int | None:
        """The best-rewarded terminal node stating the answer with the most weight: an answer weighs the rewards
        of every visited node with a terminal stating it at or below (llm-reasoners' ``'edge'`` policy)."""
        weight: dict[str, float] = defaultdict(float)
        stating: dict[str, list[int]] = defaultdict(list)
        for node in tree:
            if not (node["materialized"] and node["terminal"] and not node["invalid"]):
                continue
            answer = ctx.answer(node)
            if answer is not None:
                stating[answer].append(node["id"])
        for answer, ids in stating.items():
            credited = set()
            for node_id in ids:
                for on_path in tree.path(node_id):
                    credited.add(on_path)
            weight[answer] = sum(tree[n]["reward"] or 0.0 for n in credited)
        if not weight:
            return None
        best = max(weight, key=lambda a: (weight[a], -min(stating[a])))
        return max(stating[best], key=lambda n: (tree[n]["reward"] or 0.0, -n))
