"""A small exact domain: reach a target number from a start with "add 1", "add 3" and "double".

It serves the graph's tests and the Studio entry until a real domain is chosen; the optimal
number of steps is known by breadth-first search, so any strategy's result can be checked.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any

ACTIONS = {"add 1": lambda v: v + 1, "add 3": lambda v: v + 3, "double": lambda v: v * 2}


@dataclass(frozen=True)
class ReachNumber:
    """States are ``{"value", "target", "steps"}``; a state past the target is a dead end."""

    name: str = "reach_number"
    goal_visible: bool = True  # the target is part of the problem

    def initial_state(self, problem: Any) -> dict[str, Any]:
        if not (isinstance(problem, dict) and isinstance(problem.get("start"), int)
                and isinstance(problem.get("target"), int)):
            raise ValueError(f"a reach_number problem is {{'start': int, 'target': int}}, got {problem!r}")
        if problem["start"] > problem["target"]:
            raise ValueError("start must not exceed target")
        return {"value": problem["start"], "target": problem["target"], "steps": []}

    def prompt(self, state: dict[str, Any]) -> str:
        return (f"Reach {state['target']} from {state['value']} using: add 1, add 3, double.\n"
                f"Steps so far: {', '.join(state['steps']) or 'none'}.\nNext step:")

    def describe(self, state: dict[str, Any]) -> str:
        return f"value {state['value']}, target {state['target']}; steps: {', '.join(state['steps']) or 'none'}"

    def legal_actions(self, state: dict[str, Any]) -> list[str] | None:
        return list(ACTIONS)

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        name = action.strip().lower().rstrip(".")
        if name not in ACTIONS:
            raise ValueError(f"unknown action {action!r}; expected one of {', '.join(ACTIONS)}")
        return {"value": ACTIONS[name](state["value"]), "target": state["target"], "steps": [*state["steps"], name]}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return state["value"] >= state["target"]

    def is_solved(self, state: dict[str, Any]) -> bool:
        return state["value"] == state["target"]

    def goal_progress(self, state: dict[str, Any]) -> float:
        return 1.0 if self.is_solved(state) else min(state["value"] / state["target"], 0.99)

    def answer(self, state: dict[str, Any]) -> str | None:
        return ", ".join(state["steps"]) or None

    def self_eval_query(self, state: dict[str, Any], action: str) -> tuple[str, str, str | None]:
        return (f"{self.prompt(state)} {action}\nDoes this step bring the value closer to {state['target']}? Answer:",
                " yes", " no")


def shortest_plan(start: int, target: int) -> list[str]:
    """An optimal plan by breadth-first search (the reference the tests compare with)."""
    parents: dict[int, tuple[int, str] | None] = {start: None}
    queue = deque([start])
    while queue:
        value = queue.popleft()
        if value == target:
            plan = []
            while parents[value] is not None:
                value, action = parents[value]  # type: ignore[misc]
                plan.append(action)
            return plan[::-1]
        for action, apply in ACTIONS.items():
            nxt = apply(value)
            if nxt <= target and nxt not in parents:
                parents[nxt] = (value, action)
                queue.append(nxt)
    raise ValueError(f"{target} cannot be reached from {start}")


def toy_problems(options: Any) -> list[dict[str, Any]]:
    """``{"start", "target"}`` problems from a JSON list file, or ``generate`` seeded random ones."""
    import json
    import random
    from pathlib import Path

    if options.get("data"):
        problems = json.loads(Path(options["data"]).read_text(encoding="utf-8"))
        if not isinstance(problems, list):
            raise ValueError(f"{options['data']}: expected a JSON list of {{'start', 'target'}} objects")
        return [{"id": f"toy-{i}", **p} for i, p in enumerate(problems)]
    rng = random.Random(options.get("seed", 0))
    pairs = [(start, start + rng.randint(5, 40)) for start in (rng.randint(1, 10) for _ in range(options["generate"]))]
    return [{"id": f"toy-{s}-{t}", "start": s, "target": t} for s, t in pairs]


def _register() -> None:
    from srm_tasks.registry import Option, TaskSpec, register

    register(TaskSpec(
        name="reach_number", summary="reach a target number with add 1, add 3 and double (exact, for tests)",
        make_task=lambda options: ReachNumber(), load_problems=toy_problems,
        problem_key=lambda p: f"{p['start']}->{p['target']}", default_depth=8,
        problem_depth=lambda p: len(shortest_plan(p["start"], p["target"])),
        data_help="a JSON list of {start, target} objects (default: generated)",
        options=(Option("generate", "without --data: how many problems to generate", 4, int, "N"),),
    ))


_register()
