"""The task interface a domain implements to be searched (the WorldModel/SearchConfig seam).

A task knows its world: how a problem starts, how an action changes a state, when a state is
terminal and solved, and how to show a state to the generator and to the SRM. It knows nothing
of models or search strategies. States must be JSON-serialisable (they live in the graph state,
so checkpointers and LangGraph Studio can store and show them).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

JSON = Any


@runtime_checkable
class Task(Protocol):
    """A searchable domain. ``legal_actions`` returning None means "sample free text actions"."""

    name: str
    goal_visible: bool
    """Whether ``is_solved`` is a goal test the agent may run while searching (a Blocksworld goal is
    stated in the problem). False when it grades against a hidden reference (GSM8K's gold answer):
    the search then takes a terminal state with an ``answer`` as a candidate, never calls
    ``is_solved`` or ``reward``, and only the answer it picks is graded."""

    def initial_state(self, problem: JSON) -> JSON:
        """The root state for ``problem`` (a problem id, text or dict, as the task defines)."""
        ...

    def prompt(self, state: JSON) -> str:
        """The text the generator continues to propose the next action."""
        ...

    def describe(self, state: JSON) -> str:
        """The state as the SRM reads it: the task and the steps so far."""
        ...

    def legal_actions(self, state: JSON) -> list[str] | None:
        """Every legal next action, or None when actions are free text to be sampled."""
        ...

    def step(self, state: JSON, action: str) -> JSON:
        """The state after ``action``; a domain may raise ValueError for an impossible action."""
        ...

    def is_terminal(self, state: JSON) -> bool:
        ...

    def is_solved(self, state: JSON) -> bool:
        ...

    def reward(self, state: JSON) -> float:
        """Terminal reward in [0, 1] (MCTS backs it up); 1.0 for a solved state."""
        ...

    def answer(self, state: JSON) -> str | None:
        """The answer or plan a state stands for, for reports."""
        ...

    def self_eval_prompt(self, state: JSON, action: str) -> str:
        """A prompt asking the generator whether ``action`` is a good step; it answers " Yes" or " No"."""
        ...
