"""The search as a LangGraph graph: ``propose`` → evaluator (``srm``, ``self_eval``, …) → ``expand``, looped.

``build_tree_search`` takes strategies, evaluators, proposers and world models by name or as objects,
so a user plugs in their own without editing the package. The tree lives in a delta channel: each step
writes only its changes, and a checkpointer stores deltas (``srm_agent.search.tree``).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, TypedDict

from langgraph.channels.delta import DeltaChannel
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer, Overwrite

from srm_agent.cache import ScoreCache
from srm_agent.generators.base import Generator
from srm_agent.node import emit, rule_params
from srm_agent.search import registry
from srm_agent.search.engine import Engine, Failure, SearchConfig
from srm_agent.search.evaluators.base import Evaluator
from srm_agent.search.proposers import Proposer, make_proposer
from srm_agent.search.strategies.base import Strategy
from srm_agent.search.task import Task
from srm_agent.search.traces import FolderSink
from srm_agent.search.tree import Tree, apply_ops
from srm_agent.search.world import ExactWorld, WorldModel
from srm_agent.verify import Scorer

STEPS_PER_EXPANSION = 3  # propose, evaluate, expand
UNBOUNDED_EXPANSIONS = 10_000  # only the recursion limit's guess when nothing bounds a search


class Routing(TypedDict, total=False):
    """What the routers read: declaring it keeps LangGraph's fresh reads from rebuilding the tree to route."""

    done: bool
    candidates: list[dict[str, Any]]


class SearchState(TypedDict, total=False):
    """The graph's state; callers give ``problem`` and read ``result``."""

    problem: Any
    result: dict[str, Any]
    tree: Annotated[dict, DeltaChannel(apply_ops)]
    current: int | None
    candidates: list[dict[str, Any]]
    prompt: str | None
    verdict: dict[str, Any] | None
    usage: dict[str, Any]
    started: float
    done: bool


def make_strategy(strategy: str | Strategy, options: dict[str, Any]) -> Strategy:
    if not isinstance(strategy, str):
        registry.ensure_registered("strategy", strategy)
        return strategy
    return registry.strategy_factory(strategy)(**options)


def make_evaluator(evaluator: str | Evaluator, srm: Scorer | None, cache: ScoreCache | None,
                   options: dict[str, Any], rule: dict[str, Any]) -> Evaluator:
    if not isinstance(evaluator, str):
        registry.ensure_registered("evaluator", evaluator)
        return evaluator
    factory = registry.evaluator_factory(evaluator)
    if evaluator == "srm":
        return factory(srm, cache=cache, **rule, **options)
    return factory(**options)


def build_tree_search(
    task: Task,
    generator: Generator | None,
    srm: Scorer | None = None,
    *,
    strategy: str | Strategy = "bfs",
    evaluator: str | Evaluator = "srm",
    proposals: str | Proposer = "enumerate",
    world: WorldModel | None = None,
    k: int | None = 4,
    max_depth: int = 5,
    beam_width: int = 10,
    mcts_iters: int = 10,
    mcts_exploration: float = 1.0,
    strategy_options: dict[str, Any] | None = None,
    evaluator_options: dict[str, Any] | None = None,
    max_expansions: int | None = 100,
    goal_test: str = "every-step",
    goal_visible: bool | None = None,
    temperature: float = 0.8,
    max_new_tokens: int = 48,
    stop: list[str] | None = None,
    seed: int | None = 0,
    cache: ScoreCache | None = None,
    trace: Any = None,
    trace_dir: str | Path | None = None,
    checkpointer: Checkpointer = None,
    failures: tuple[type[BaseException], ...] | None = None,
    **rule: Any,
):
    """Compile the search graph for ``task``.

    ``strategy``: ``bfs``, ``dfs``, ``beam``, ``mcts`` or a Strategy object (``strategy_options`` go to a
    named one's constructor; ``beam_width``, ``mcts_iters`` and ``mcts_exploration`` are shorthands).
    ``evaluator``: ``srm`` (the speculative rule; ``rule`` sets alpha, tau, mode, threshold, ratio),
    ``self_eval``, ``prior`` (the generator's preference, nothing pruned; with ``k=1`` chain of thought),
    ``random`` or an Evaluator object. ``proposals``: ``enumerate`` (legal actions scored by the generator;
    ``k=None`` keeps them all), ``sample`` (free text), ``uniform`` or a Proposer. ``world``: the task's
    exact dynamics by default, or a predicting world model. ``goal_test``: ``every-step`` stops at the first
    solution, ``end`` runs the budget and lets the strategy pick. ``trace``: a sink, or ``trace_dir`` a
    folder for one JSON trace per search (``result["trace_path"]``). ``failures``: the exception types that
    end a search with ``result["failure"]`` (default: backend failures; any other exception propagates).
    """
    params = rule_params(**rule)  # a typo in a rule parameter fails here, whatever the evaluator
    options = dict(strategy_options or {})
    if strategy == "beam":
        options.setdefault("width", beam_width)
    elif strategy == "mcts":
        options.setdefault("iterations", mcts_iters)
        options.setdefault("w_exp", mcts_exploration)
    strategy_obj = make_strategy(strategy, options)
    evaluator_obj = make_evaluator(evaluator, srm, cache, dict(evaluator_options or {}), rule)
    proposer = proposals if not isinstance(proposals, str) else make_proposer(
        proposals, k=k, temperature=temperature, max_new_tokens=max_new_tokens, stop=stop)
    sink = trace if trace is not None else (FolderSink(trace_dir) if trace_dir is not None else None)
    recorded = {"k": k, "max_depth": max_depth, "seed": seed, "proposals": proposer.name,
                "goal_test": goal_test, **strategy_obj.options()}
    if evaluator_obj.name == "srm":
        recorded.update(params)
    if world is not None and not world.exact:  # a trace of predicted states says so (and gets its own search id)
        recorded["world_model"] = world.name
    config = SearchConfig(task=task, generator=generator, proposer=proposer, evaluator=evaluator_obj,
                          strategy=strategy_obj, world=world or ExactWorld(), max_depth=max_depth,
                          max_expansions=max_expansions, goal_test=goal_test, goal_visible=goal_visible, seed=seed,
                          trace=sink, params=recorded, **({"failures": failures} if failures is not None else {}))
    graph = compile_search(config, checkpointer=checkpointer)
    bound = max_expansions or UNBOUNDED_EXPANSIONS
    if strategy_obj.name == "mcts":
        bound += getattr(strategy_obj, "iterations", 0)
    return graph.with_config(recursion_limit=STEPS_PER_EXPANSION * bound + 10)


def compile_search(config: SearchConfig, *, checkpointer: Checkpointer = None):
    """The LangGraph graph over ``Engine(config)``'s steps."""
    engine = Engine(config)
    failures = config.failures
    evaluator_node = config.evaluator.name

    def finish(tree: Tree, usage: dict[str, Any], started: float, failure: str | None = None) -> dict[str, Any]:
        result = engine.finish(tree, usage, started, failure)
        emit({"event": "done", **{key: result[key] for key in ("solved", "answer", "path", "failure")}})
        return {"result": result, "usage": result["usage"], "done": True, "candidates": [], "verdict": None}

    def write(tree: Tree, new: bool) -> Any:
        """The step's tree write: its ops, or the whole new tree when a search starts (replacing the last one)."""
        if new:
            tree.commit()
            return Overwrite(tree.stored)
        return tree.ops

    def propose(s: SearchState) -> dict[str, Any]:
        new = bool(s.get("done")) or not (s.get("tree") or {}).get("nodes")
        started = time.time() if new else s["started"]
        tree, usage = Tree(), s.get("usage") or {}
        try:
            if new:
                tree, usage = engine.start(s["problem"])
            else:
                tree = Tree(s["tree"])
            out = engine.propose(tree, usage)
        except Failure as exc:
            return {"tree": write(tree, new), "started": started, **finish(tree, usage, started, str(exc))}
        except failures as exc:
            return {"tree": write(tree, new), "started": started,
                    **finish(tree, usage, started, f"{type(exc).__name__}: {exc}")}
        if out.get("finished"):
            return {"tree": write(tree, new), "started": started, **finish(tree, out["usage"], started)}
        return {"tree": write(tree, new), "started": started, "done": False, "result": s.get("result") or {},
                "current": out["current"], "candidates": out["candidates"], "prompt": out["prompt"],
                "verdict": None, "usage": out["usage"]}

    def evaluate(s: SearchState) -> dict[str, Any]:
        tree = Tree(s["tree"])
        try:
            out = engine.evaluate(tree, s["current"], s["candidates"], s.get("prompt"), s["usage"])
        except failures as exc:
            return finish(tree, s["usage"], s["started"], f"{type(exc).__name__}: {exc}")
        emit({"event": f"{evaluator_node}_verdict", **out["verdict"]})
        return out

    def expand(s: SearchState) -> dict[str, Any]:
        tree = Tree(s["tree"])
        try:
            out = engine.expand(tree, s["current"], s.get("verdict"), s["usage"])
        except failures as exc:
            return {"tree": tree.ops, **finish(tree, s["usage"], s["started"], f"{type(exc).__name__}: {exc}")}
        parent = tree[s["current"]]
        emit({"event": "expand", "node": parent["id"], "children": parent["children"],
              "accepted": [c for c in parent["children"] if tree[c]["decision"]["accepted"]]})
        update = {"tree": tree.ops, "usage": out["usage"], "candidates": [], "verdict": None}
        if out["finished"]:
            return {**update, **finish(tree, out["usage"], s["started"])}
        return update

    def after_propose(s: Routing) -> str:
        if s.get("done"):
            return END
        return evaluator_node if s.get("candidates") else "expand"

    def after_step(target: str):
        def route(s: Routing) -> str:
            return END if s.get("done") else target

        return route

    builder = StateGraph(SearchState)
    builder.add_node("propose", propose)
    builder.add_node(evaluator_node, evaluate)
    builder.add_node("expand", expand)
    builder.add_edge(START, "propose")
    builder.add_conditional_edges("propose", after_propose, [evaluator_node, "expand", END])
    builder.add_conditional_edges(evaluator_node, after_step("expand"), ["expand", END])
    builder.add_conditional_edges("expand", after_step("propose"), ["propose", END])
    return builder.compile(checkpointer=checkpointer,
                           name=f"tree_search_{config.strategy.name}_{config.evaluator.name}")
