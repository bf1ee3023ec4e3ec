"""Exact distances to a goal for every state of a few blocks, from one graph per set of blocks.

Every Blocksworld action has an inverse (pick-up/put-down, stack/unstack), so the state graph is
undirected and the optimal distance of every state to a goal is one breadth-first search from all
the states that meet it. The graph of a set of blocks is built once (about 70,000 states for 7
blocks) and shared by all goals, which makes exact labels and optimal plans cheap at 3-7 blocks.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from functools import lru_cache

from srm_tasks.blocksworld.world import Op, State, apply, legal_ops


GRAPH_BLOCKS = 7  # the largest set of blocks whose whole graph is built (~66,000 states, ~2 s)


class StateGraph:
    """All states of ``blocks`` (hand included) and the actions between them."""

    def __init__(self, blocks: Sequence[str]) -> None:
        start: State = frozenset({("handempty",), *(("ontable", b) for b in blocks), *(("clear", b) for b in blocks)})
        self.states: list[State] = [start]
        self.index: dict[State, int] = {start: 0}
        self.edges: list[list[tuple[Op, int]]] = []
        i = 0
        while i < len(self.states):  # the list grows as new states are found: a breadth-first sweep
            out = []
            for op in legal_ops(self.states[i]):
                nxt = apply(self.states[i], op)
                j = self.index.setdefault(nxt, len(self.states))
                if j == len(self.states):
                    self.states.append(nxt)
                out.append((op, j))
            self.edges.append(out)
            i += 1

    def distances(self, goal: State) -> list[int]:
        """Optimal number of actions from each state (by index) to one that meets ``goal``."""
        dist = [-1] * len(self.states)
        queue = deque(i for i, s in enumerate(self.states) if goal <= s)
        for i in queue:
            dist[i] = 0
        while queue:
            i = queue.popleft()
            for _, j in self.edges[i]:
                if dist[j] < 0:
                    dist[j] = dist[i] + 1
                    queue.append(j)
        return dist


@lru_cache(maxsize=8)
def state_graph(blocks: tuple[str, ...]) -> StateGraph:
    return StateGraph(blocks)


@lru_cache(maxsize=64)
def _distances(blocks: tuple[str, ...], goal: State) -> list[int]:
    return state_graph(blocks).distances(goal)


def blocks_of(state: State) -> tuple[str, ...]:
    """The blocks of a state, sorted: the key of its state graph."""
    return tuple(sorted({f[1] for f in state if f[0] in ("ontable", "on", "holding")}))


def distance(state: State, goal: State) -> int:
    """The optimal number of actions from ``state`` to ``goal``."""
    blocks = blocks_of(state)
    d = _distances(blocks, goal)[state_graph(blocks).index[state]]
    if d < 0:
        raise ValueError("the goal is unreachable from this state")
    return d


def optimal_actions(state: State, goal: State) -> list[Op]:
    """The legal actions of ``state`` that lower its distance to ``goal`` by one."""
    blocks = blocks_of(state)
    graph, dist = state_graph(blocks), _distances(blocks, goal)
    here = dist[graph.index[state]]
    return [op for op, j in graph.edges[graph.index[state]] if dist[j] == here - 1]


def optimal_plan(state: State, goal: State) -> list[Op]:
    """An optimal plan: the first optimal action, again and again."""
    plan = []
    while not goal <= state:
        op = optimal_actions(state, goal)[0]
        plan.append(op)
        state = apply(state, op)
    return plan
