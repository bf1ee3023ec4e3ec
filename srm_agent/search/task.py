"""The task interface a domain implements to be searched (the WorldModel/SearchConfig seam).

A task knows its world: how a problem starts, how an action changes a state, when a state is
terminal and solved, and how to show a state to the generator and to the SRM. It knows nothing
of models or search strategies. States must be JSON-serialisable (they live in the graph state,
so checkpointers and LangGraph Studio can store and show them). Domains live in ``srm_tasks``.
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
    ``is_solved`` or ``goal_progress``, and only the answer it picks is graded."""

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

    def goal_progress(self, state: JSON) -> float:
        """The share of the goal a state meets, in [0, 1] (1 when solved); RAP's reward reads it."""
        ...

    def answer(self, state: JSON) -> str | None:
        """The answer or plan a state stands for, for reports."""
        ...

    def self_eval_query(self, state: JSON, action: str) -> tuple[str, str, str | None]:
        """How the generator grades ``action`` itself: (prompt, good answer, bad answer or None).

        Self-evaluation scores the log-probability of the good answer after the prompt (normalised
        against the bad one when there is one)."""
        ...
