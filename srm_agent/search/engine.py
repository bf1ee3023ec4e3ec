"""The search engine: one search's steps (start, propose, evaluate, expand, finish) over a delta-grown tree.

The steps are plain functions of the search state that return updates, so the LangGraph graph
(``srm_agent.search.graph``) and the plain loop ``run_search`` run exactly the same code. The engine
holds configuration only: everything a search changes lives in its state (the tree, the usage), so one
engine serves many searches at once.

A "solution" is what the search can recognise: a goal state when the goal is visible (Blocksworld), a
terminal state with an answer when it is not (GSM8K's gold answer is never read by the search; only the
answer it commits to is graded). With ``goal_test="every-step"`` the search stops at the first solution
it steps into; with ``"end"`` it runs its budget and the strategy picks the answer (ToT judges only its
output; RAP returns its best path).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from srm_agent.errors import backend_failures
from srm_agent.generators.base import Generator
from srm_agent.search.evaluators.base import EvalContext, Evaluator
from srm_agent.search.proposers import Proposer
from srm_agent.search.strategies.base import Strategy, path_mean
from srm_agent.search.task import Task
from srm_agent.search.tree import Tree, apply_ops
from srm_agent.search.usage import charge, count, new_usage
from srm_agent.search.world import InvalidStep, WorldModel

GOAL_TESTS = ("every-step", "end")


@dataclass(frozen=True)
class SearchConfig:
    """Everything that decides how a search runs (the parts are plug-ins; see their protocols)."""

    task: Task
    generator: Generator | None
    proposer: Proposer
    evaluator: Evaluator
    strategy: Strategy
    world: WorldModel
    max_depth: int = 5
    max_expansions: int | None = None
    goal_test: str = "every-step"
    goal_visible: bool | None = None  # default: the task's own goal_visible
    seed: int | None = 0
    failures: tuple[type[BaseException], ...] = field(default_factory=backend_failures)
    trace: Any = None  # a TraceSink (callable taking the trace dict, returning where it went) or None
    params: dict[str, Any] = field(default_factory=dict)  # recorded in traces

    def __post_init__(self) -> None:
        if self.goal_test not in GOAL_TESTS:
            raise ValueError(f"goal_test must be one of {', '.join(GOAL_TESTS)}, got {self.goal_test!r}")
        for name in ("max_depth", "max_expansions"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if self.generator is None and (self.proposer.uses_generator or self.evaluator.name == "self_eval"):
            raise ValueError(f"{self.proposer.name} proposals and {self.evaluator.name} evaluation need a generator")

    @property
    def sees_goal(self) -> bool:
        return self.task.goal_visible if self.goal_visible is None else self.goal_visible


class Failure(Exception):
    """Ends one search with ``result["failure"]`` (a backend failed, or the problem is malformed)."""


def new_node(parent: dict[str, Any] | None, action: str | None, decision: dict[str, Any] | None) -> dict[str, Any]:
    reward = decision["reward"] if decision else None
    return {"parent": parent["id"] if parent else None, "action": action,
            "depth": parent["depth"] + 1 if parent else 0, "state": None, "task_state": None,
            "decision": decision, "fast_reward": reward, "prior": decision["prior"] if decision else 0.0,
            "reward": reward, "reward_sum": (parent["reward_sum"] + reward) if parent else 0.0, "children": [],
            "expanded": False, "materialized": False, "terminal": False, "solved": False, "invalid": None,
            "visits": 0, "value_sum": 0.0}


class Step:
    """One step of one search: the tree view, the usage so far, and the SearchContext strategies read."""

    def __init__(self, engine: Engine, tree: Tree, usage: dict[str, Any]) -> None:
        self.engine, self.config, self.tree, self.usage = engine, engine.config, tree, usage

    @property
    def max_depth(self) -> int:
        return self.config.max_depth

    def is_leaf(self, node: dict[str, Any]) -> bool:
        return not node["invalid"] and node["materialized"] and (node["terminal"]
                                                                 or node["depth"] >= self.config.max_depth)

    def expandable(self, node: dict[str, Any]) -> bool:
        return (node["materialized"] and not node["invalid"] and not node["terminal"] and not node["expanded"]
                and node["depth"] < self.config.max_depth)

    def goal_term(self, node: dict[str, Any]) -> tuple[bool, float] | None:
        if not self.config.sees_goal or node["task_state"] is None:
            return None
        return bool(node["solved"]), float(self.config.task.goal_progress(node["task_state"]))

    def answer(self, node: dict[str, Any]) -> str | None:
        return None if node["task_state"] is None else self.config.task.answer(node["task_state"])

    def is_solution(self, node: dict[str, Any]) -> bool:
        if node["invalid"] or node["task_state"] is None:
            return False
        if self.config.sees_goal:
            return node["solved"]
        return node["terminal"] and self.config.task.answer(node["task_state"]) is not None

    def describe(self, node_id: int, task_state: Any, **fields: Any) -> dict[str, Any]:
        """Record a node's state and what the task says of it; note it if it is the first solution."""
        task = self.config.task
        node = self.tree.update(node_id, task_state=task_state, state=task.describe(task_state), materialized=True,
                                terminal=bool(task.is_terminal(task_state)),
                                solved=self.config.sees_goal and bool(task.is_solved(task_state)), **fields)
        if (self.config.goal_test == "every-step" and self.tree.meta("solution") is None
                and self.is_solution(node)):
            self.tree.set_meta("solution", node_id)
        return node

    def materialize(self, tree: Tree, node_id: int) -> dict[str, Any]:
        node = tree[node_id]
        if node["materialized"]:
            return node
        parent = tree[node["parent"]]
        try:
            step = self.config.world.step(self.config.task, parent["task_state"], node["action"])
        except InvalidStep as exc:
            self.usage = charge(self.usage, "world_model", exc.usage, invalid_steps=1)
            return tree.update(node_id, materialized=True, invalid=str(exc) or "invalid step", terminal=True)
        self.usage = charge(self.usage, "world_model", step.usage)
        return self.describe(node_id, step.state, **({"aux": step.aux} if step.aux else {}))

    def solution(self) -> int | None:
        return self.tree.meta("solution")


class Engine:
    """The steps of a search with ``config``; every method takes the search's state and returns updates."""

    def __init__(self, config: SearchConfig) -> None:
        self.config = config

    # -- start -------------------------------------------------------------------------------------

    def start(self, problem: Any) -> tuple[Tree, dict[str, Any]]:
        """A fresh tree with the root stepped in, and fresh usage; Failure for a malformed problem."""
        task = self.config.task
        try:
            root_state = task.initial_state(problem)
        except ValueError as exc:
            raise Failure(f"bad problem: {exc}") from None
        tree = Tree()
        step = Step(self, tree, new_usage())
        tree.add(new_node(None, None, None))
        step.describe(0, root_state)
        self.config.strategy.start(tree, step)
        tree.commit()
        return tree, step.usage

    # -- the three steps of an expansion -------------------------------------------------------------

    def propose(self, tree: Tree, usage: dict[str, Any]) -> dict[str, Any]:
        """Pick the next node and ask for its candidates: ``{"current", "candidates", "prompt", "usage"}``, or
        ``{"finished": True, ...}`` when the search is over."""
        step = Step(self, tree, usage)
        if step.solution() is not None:
            return {"finished": True, "usage": step.usage}
        budget = self.config.max_expansions
        current = None if budget is not None and usage["expansions"] >= budget else \
            self.config.strategy.select(tree, step)
        if current is None or step.solution() is not None:
            return {"finished": True, "usage": step.usage}
        node = step.materialize(tree, current)
        proposal = self.config.proposer.propose(self.config.task, node["task_state"], self.config.generator,
                                                node_id=current, seed=self.config.seed)
        return {"current": current, "candidates": proposal.candidates, "prompt": proposal.prompt,
                "usage": charge(step.usage, "proposal", proposal.usage)}

    def evaluate(self, tree: Tree, current: int, candidates: list[dict[str, Any]], prompt: str | None,
                 usage: dict[str, Any]) -> dict[str, Any]:
        ctx = EvalContext(task=self.config.task, node=tree[current], generator=self.config.generator, prompt=prompt,
                          seed=self.config.seed)
        evaluation = self.config.evaluator.evaluate(ctx, candidates)
        decisions = evaluation.verdict["decisions"]
        usage = charge(usage, "evaluation", evaluation.usage, srm_calls=evaluation.srm_calls,
                       srm_scored=evaluation.srm_scored, cache_hits=evaluation.cache_hits,
                       srm_seconds=evaluation.srm_seconds, judged=len(decisions),
                       rejected=sum(not d["accepted"] for d in decisions),
                       fallbacks=int(bool(evaluation.verdict.get("fallback"))))
        return {"verdict": evaluation.verdict, "usage": usage}

    def expand(self, tree: Tree, current: int, verdict: dict[str, Any] | None, usage: dict[str, Any]
               ) -> dict[str, Any]:
        """Add the judged candidates as children (rejected ones too, for the trace; they are never stepped)."""
        step = Step(self, tree, count(usage, expansions=1))
        parent = tree[current]
        decisions = verdict["decisions"] if verdict else []
        ids = [tree.add(new_node(parent, d["text"].strip(), d)) for d in decisions]
        tree.update(current, expanded=True, children=[*parent["children"], *ids])
        if self.config.strategy.eager:
            for child_id, decision in zip(ids, decisions):
                if decision["accepted"]:
                    step.materialize(tree, child_id)
        accepted = [ids[i] for i in verdict["order"]] if verdict else []
        self.config.strategy.update(tree, current, accepted, step)
        return {"usage": step.usage, "finished": step.solution() is not None}

    # -- finish ------------------------------------------------------------------------------------

    def answer_node(self, tree: Tree, step: Step) -> int | None:
        """The first solution (goal test every step), else the strategy's pick, else how far the search got."""
        if step.solution() is not None:
            return step.solution()
        picked = self.config.strategy.result(tree, step)
        if picked is not None:
            return picked
        if len(tree) == 0:
            return None
        if not self.config.sees_goal:
            answers = [n for n in tree if step.is_solution(n)]
            if answers:
                return max(answers, key=lambda n: (path_mean(n), -n["id"]))["id"]
        reached = [n for n in tree if n["materialized"] and not n["invalid"]]
        return max(reached, key=lambda n: (n["depth"], n["reward_sum"], -n["id"]))["id"]

    def grade(self, tree: Tree, node_id: int) -> tuple[bool, str | None]:
        """(solved, answer) of a node's path: the task's own verdict, on the exact state (a predicting world
        model's plan is replayed through the task's dynamics first)."""
        task = self.config.task
        state = tree[node_id]["task_state"]
        if not self.config.world.exact:
            state = tree[0]["task_state"]
            for node_id_on_path in tree.path(node_id)[1:]:
                try:
                    state = task.step(state, tree[node_id_on_path]["action"])
                except ValueError:
                    return False, task.answer(tree[node_id]["task_state"])
        return bool(task.is_solved(state)), task.answer(state)

    def finish(self, tree: Tree, usage: dict[str, Any], started: float, failure: str | None = None
               ) -> dict[str, Any]:
        usage = {**usage, "wall_s": round(time.time() - started, 3)}
        result: dict[str, Any] = {"solved": False, "answer": None, "path": [], "failure": failure, "usage": usage}
        if len(tree):
            step = Step(self, tree, usage)
            best = self.answer_node(tree, step)
            if best is not None:
                solved, answer = self.grade(tree, best)
                result.update(solved=solved, answer=answer, path=tree.path(best))
        if self.config.trace is not None and len(tree):
            from srm_agent.search.traces import search_trace

            result["trace_path"] = self.config.trace(search_trace(self.config, tree, result))
        return result


# -- a plain loop over the same steps -------------------------------------------------------------------

def run_search(config: SearchConfig, problem: Any) -> tuple[dict[str, Any], Tree]:
    """Run one search without LangGraph: (result, tree). Same steps, same tree as the graph."""
    engine = Engine(config)
    started = time.time()
    tree, usage = Tree(), new_usage()
    try:
        tree, usage = engine.start(problem)
        while True:
            out = engine.propose(tree, usage)
            usage = out["usage"]
            if out.get("finished"):
                break
            tree.commit()
            current = out["current"]
            verdict = None
            if out["candidates"]:
                evaluated = engine.evaluate(tree, current, out["candidates"], out["prompt"], usage)
                verdict, usage = evaluated["verdict"], evaluated["usage"]
            expanded = engine.expand(tree, current, verdict, usage)
            usage = expanded["usage"]
            tree.commit()
            if expanded["finished"]:
                break
    except Failure as exc:
        tree.commit()
        return engine.finish(tree, usage, started, failure=str(exc)), tree
    except config.failures as exc:
        tree.commit()
        return engine.finish(tree, usage, started, failure=f"{type(exc).__name__}: {exc}"), tree
    tree.commit()
    return engine.finish(tree, usage, started), tree


__all__ = ["Engine", "Failure", "GOAL_TESTS", "SearchConfig", "Step", "apply_ops", "new_node", "run_search"]
