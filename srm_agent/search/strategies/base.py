"""The strategy protocol: which node to expand next, what to do with new children, which node is the answer.

A strategy works on a ``Tree`` (``srm_agent.search.tree``) and a ``SearchContext`` the engine gives it, so
it can be tested with a hand-built tree and no graph. It keeps its own bookkeeping in the tree's named
lists and meta values (a queue, a stack, a beam, an MCTS iteration), never in attributes: one strategy
object may serve many searches at once.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from srm_agent.search.tree import Tree


@runtime_checkable
class SearchContext(Protocol):
    """What the engine offers a strategy."""

    max_depth: int

    def expandable(self, node: dict[str, Any]) -> bool:
        """Stepped, valid, not terminal and above the depth limit."""
        ...

    def is_leaf(self, node: dict[str, Any]) -> bool:
        """Terminal or at the depth limit (an invalid node is neither a leaf nor expandable)."""
        ...

    def materialize(self, tree: Tree, node_id: int) -> dict[str, Any]:
        """Step a node created without its state (a lazy child) through the world model; returns it."""
        ...

    def goal_term(self, node: dict[str, Any]) -> tuple[bool, float] | None:
        """(goal reached, share of the goal met) of a stepped node, or None when the goal is hidden."""
        ...

    def answer(self, node: dict[str, Any]) -> str | None:
        """The answer a stepped node states (the task's ``answer``), or None (a vote over the tree reads it)."""
        ...


@runtime_checkable
class Strategy(Protocol):
    name: str
    eager: bool
    """True: accepted children are stepped as they are created; False: when first visited (MCTS)."""

    def start(self, tree: Tree, ctx: SearchContext) -> None:
        """Set up after the root (node 0) exists."""
        ...

    def select(self, tree: Tree, ctx: SearchContext) -> int | None:
        """The next node to expand, or None when the search is over."""
        ...

    def update(self, tree: Tree, parent: int, children: list[int], ctx: SearchContext) -> None:
        """After ``parent`` was expanded: ``children`` are its accepted children, best first."""
        ...

    def result(self, tree: Tree, ctx: SearchContext) -> int | None:
        """The node whose path is the search's answer when it did not stop at a solution (None: the engine's default)."""
        ...

    def options(self) -> dict[str, Any]:
        """The strategy's settings, for the run's config and traces."""
        ...


def path_mean(node: dict[str, Any]) -> float:
    """The mean reward along a node's path (ToT's ``reward_aggregator=mean``)."""
    return node["reward_sum"] / node["depth"] if node["depth"] else 0.0
