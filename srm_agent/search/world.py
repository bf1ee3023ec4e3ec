"""World models: how a search gets the state an action leads to.

``ExactWorld`` is the task's own dynamics (a simulator, or the domain's deterministic step). A domain
may offer a predicting world model (RAP's LLM world model for Blocksworld): its states are what the
generator believes, so a plan found with it is graded by replaying it through the task's exact
dynamics (``exact = False``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

from srm_agent.generators.base import Usage
from srm_agent.search.task import Task


@dataclass(frozen=True)
class WorldStep:
    """The next state, what the step cost (generator usage), and extra facts for the reward (``aux``)."""

    state: Any
    usage: Usage = field(default_factory=Usage)
    aux: dict[str, Any] = field(default_factory=dict)


class InvalidStep(ValueError):
    """An action that cannot be taken, or a predicted change that cannot be read; ``usage`` is what it cost."""

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage or Usage()


@runtime_checkable
class WorldModel(Protocol):
    name: str
    exact: bool

    def step(self, task: Task, state: Any, action: str) -> WorldStep:
        """The state after ``action``; raises InvalidStep (a ValueError) when it cannot be taken."""
        ...


class ExactWorld:
    """The task's own ``step``: free, and exact."""

    name = "exact"
    exact = True

    def step(self, task: Task, state: Any, action: str) -> WorldStep:
        try:
            return WorldStep(task.step(state, action))
        except InvalidStep:
            raise
        except ValueError as exc:
            raise InvalidStep(str(exc)) from None
