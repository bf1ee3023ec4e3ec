"""The search graph: ``propose`` → ``srm`` (or ``self_eval``) → ``expand``, looped by a strategy.

- ``propose`` picks the next node to expand (BFS queue, DFS stack, beam level, or MCTS/UCT
  selection) and asks the generator for K candidates: sampled text, or, when the task
  enumerates legal actions, K drawn without replacement from the generator's distribution.
- ``srm`` is the library's SRM node: the speculative rule accepts or rejects each candidate.
  ``self_eval`` is the baseline: the generator grades each candidate (and pays for it).
- ``expand`` adds the candidates to the tree; only accepted ones are stepped and may be
  expanded later. It stops at ``max_depth``, the expansion budget, or the first solution.

A "solution" is what the search can recognise: a goal state when the task's goal is visible
(Blocksworld), a terminal state with an answer when it is not (GSM8K, whose gold answer the search
never reads). Without a visible goal the search answers with its best-scored terminal state
(geometric mean of the scores along its path), and only that answer is graded.

The graph holds no model details: it talks to a ``Generator`` and a ``Scorer``. Its state is
JSON, so checkpointers and LangGraph Studio can store and show it.
"""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypedDict

import numpy as np
from langgraph.graph import END, START, StateGraph
from langgraph.types import Checkpointer

from srm_agent.search.task import Task
from srm_agent.cache import ScoreCache
from srm_agent.generators import Generator
from srm_agent.node import emit, make_srm_node
from srm_agent.verify import Scorer

STRATEGIES = ("bfs", "dfs", "beam", "mcts")
EVALUATORS = ("srm", "self_eval", "none")
STEPS_PER_EXPANSION = 3  # propose, evaluator, expand


class SearchState(TypedDict, total=False):
    """The graph's state; callers give ``problem`` and read ``result``."""

    problem: Any
    result: dict[str, Any]
    nodes: list[dict[str, Any]]
    frontier: list[int]
    next_level: list[int]
    current: int | None
    state: str
    candidates: list[dict[str, Any]]
    verdict: dict[str, Any] | None
    expansions: int
    mcts: dict[str, Any]
    usage: dict[str, Any]
    started: float
    done: bool


def _new_usage() -> dict[str, Any]:
    return {"generator_calls": 0, "prompt_tokens": 0, "generated_tokens": 0, "srm_calls": 0, "srm_scored": 0,
            "cache_hits": 0, "expansions": 0, "wall_s": 0.0}


def _node(node_id: int, parent: int | None, action: str | None, depth: int, decision: dict[str, Any] | None,
          score: float) -> dict[str, Any]:
    return {"id": node_id, "parent": parent, "action": action, "depth": depth, "state": "", "task_state": None,
            "decision": decision, "score": score, "cum_score": 0.0, "children": [], "expanded": False,
            "terminal": False, "solved": False, "invalid": None, "visits": 0, "value": 0.0, "value_sum": 0.0}


def _sub_seed(seed: int | None, *parts: Any) -> int | None:
    if seed is None:
        return None
    digest = hashlib.sha256(repr((seed, *parts)).encode()).digest()
    return int.from_bytes(digest[:4], "big")


def _path_to(nodes: list[dict[str, Any]], node_id: int) -> list[int]:
    path = [node_id]
    while nodes[path[-1]]["parent"] is not None:
        path.append(nodes[path[-1]]["parent"])
    return path[::-1]


def ranked_verdict(candidates: list[dict[str, Any]], scores: list[float], *, threshold: float = 0.0
                   ) -> dict[str, Any]:
    """A verdict for evaluators other than the SRM: accept scores >= threshold, best first.

    Duplicate texts are merged as the rule merges them; if nothing passes, the best one is
    taken and the verdict is flagged ``fallback``.
    """
    merged: dict[str, dict[str, Any]] = {}
    for cand, score in zip(candidates, scores):
        key = cand["text"].strip()
        if key in merged:
            merged[key]["count"] += 1
            continue
        merged[key] = {"text": cand["text"], "logprob": cand["logprob"], "num_tokens": cand["num_tokens"],
                       "p_llm": None, "srm_logit": None, "q_srm": None, "sr": None, "rc": None, "score": score,
                       "p_accept": None, "accepted": score >= threshold, "cached": False, "count": 1}
    decisions = list(merged.values())
    norm = np.array([d["logprob"] / d["num_tokens"] for d in decisions])
    p = np.exp(norm - norm.max())
    for d, value in zip(decisions, p / p.sum()):
        d["p_llm"] = float(value)
    ranked = sorted(range(len(decisions)), key=lambda i: (-decisions[i]["score"], -decisions[i]["p_llm"], i))
    order = [i for i in ranked if decisions[i]["accepted"]]
    fallback = not order
    if fallback:
        order = ranked[:1]
        decisions[order[0]]["accepted"] = True
    return {"decisions": decisions, "order": order, "fallback": fallback, "params": {"threshold": threshold}}


def _draw_without_replacement(logp: np.ndarray, k: int, seed: int | None) -> list[int]:
    """K indices drawn without replacement with probability proportional to exp(logp) (Gumbel top-k)."""
    gumbel = np.random.default_rng(seed).gumbel(size=len(logp))
    return list(np.argsort(-(logp + gumbel))[: min(k, len(logp))])


def build_tree_search(
    task: Task,
    generator: Generator,
    srm: Scorer | None = None,
    *,
    strategy: str = "bfs",
    evaluator: str = "srm",
    k: int = 4,
    max_depth: int = 5,
    beam_width: int = 10,
    mcts_iters: int = 10,
    mcts_exploration: float = 1.0,
    max_expansions: int = 100,
    stop_at_first_solution: bool = True,
    goal_test: bool | None = None,
    temperature: float = 0.8,
    max_new_tokens: int = 48,
    stop: list[str] | None = None,
    self_eval_threshold: float = 0.5,
    seed: int | None = 0,
    cache: ScoreCache | None = None,
    trace_dir: str | Path | None = None,
    checkpointer: Checkpointer = None,
    **rule: Any,
):
    """Compile the search graph for ``task`` (see the module docstring).

    ``evaluator="none"`` with ``k=1`` is the chain-of-thought baseline. ``rule`` passes the
    decision rule's parameters (alpha, tau, mode, threshold, ratio) to the SRM node. With
    ``trace_dir`` every finished search writes a trace JSON there (``result["trace_path"]``).
    ``goal_test`` (default: ``task.goal_visible``) lets the search call ``is_solved`` and ``reward``;
    collecting training rollouts turns it on to score them against a reference answer.
    """
    if strategy not in STRATEGIES:
        raise ValueError(f"strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if evaluator not in EVALUATORS:
        raise ValueError(f"evaluator must be one of {', '.join(EVALUATORS)}, got {evaluator!r}")
    if evaluator == "srm" and srm is None:
        raise ValueError("evaluator='srm' needs an srm (a SpeculativeRewardModel or any Scorer)")
    for name, value in (("k", k), ("max_depth", max_depth), ("beam_width", beam_width),
                        ("mcts_iters", mcts_iters), ("max_expansions", max_expansions)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    stops = ["\n"] if stop is None else stop
    sees_goal = task.goal_visible if goal_test is None else goal_test

    def propose_candidates(task_state: Any, node_id: int, calls: list[Any]) -> list[dict[str, Any]]:
        prompt = task.prompt(task_state)
        actions = task.legal_actions(task_state)
        if actions is None:
            proposed = generator.propose(prompt, k, temperature=temperature, max_new_tokens=max_new_tokens,
                                         stop=stops, seed=_sub_seed(seed, "propose", node_id))
            calls.append(proposed)
            return [asdict(c) for c in proposed if c.text.strip()]
        if not actions:
            return []
        lead = "" if prompt[-1:].isspace() else " "
        scored = generator.score_choices(prompt, [lead + a for a in actions])
        calls.append(scored)
        logp = np.array([c.logprob / c.num_tokens for c in scored])
        picks = _draw_without_replacement(logp, k, _sub_seed(seed, "draw", node_id))
        return [{"text": actions[i], "logprob": scored[i].logprob, "num_tokens": scored[i].num_tokens}
                for i in picks]

    def metered(usage: dict[str, Any], call: Callable[[], Any]) -> Any:
        calls: list[Any] = []
        try:
            return call(calls)
        finally:
            for generation in calls:
                usage["generator_calls"] += generation.usage.calls
                usage["prompt_tokens"] += generation.usage.prompt_tokens
                usage["generated_tokens"] += generation.usage.generated_tokens

    # -- strategies: which node to expand next ----------------------------------------------------

    def uct_pick(nodes: list[dict[str, Any]], parent: dict[str, Any]) -> dict[str, Any] | None:
        kids = [nodes[c] for c in parent["children"]
                if nodes[c]["decision"] and nodes[c]["decision"]["accepted"] and not nodes[c]["invalid"]]
        if not kids:
            return None
        unvisited = [c for c in kids if c["visits"] == 0]
        if unvisited:
            return max(unvisited, key=lambda c: (min(1.0, c["score"]), -c["id"]))
        log_n = math.log(max(parent["visits"], 1))
        return max(kids, key=lambda c: (c["value"] + mcts_exploration * math.sqrt(log_n / c["visits"]), -c["id"]))

    def backprop(nodes: list[dict[str, Any]], node_id: int | None, reward: float) -> None:
        while node_id is not None:
            node = nodes[node_id]
            node["visits"] += 1
            node["value_sum"] += reward
            node["value"] = node["value_sum"] / node["visits"]
            node_id = node["parent"]

    def path_value(node: dict[str, Any]) -> float:
        """The search's own estimate of a state: the geometric mean of the scores along its path."""
        return math.exp(node["cum_score"] / node["depth"]) if node["depth"] else 1.0

    def leaf_reward(node: dict[str, Any]) -> float:
        if node["invalid"]:
            return 0.0
        return float(task.reward(node["task_state"])) if sees_goal else path_value(node)

    def is_solution(node: dict[str, Any]) -> bool:
        if sees_goal:
            return node["solved"]
        return (node["terminal"] and node["task_state"] is not None and not node["invalid"]
                and task.answer(node["task_state"]) is not None)

    def mark(node: dict[str, Any]) -> None:
        """Fill in what the task says of a node whose ``task_state`` was just set."""
        node["state"] = task.describe(node["task_state"])
        node["terminal"] = bool(task.is_terminal(node["task_state"]))
        node["solved"] = sees_goal and bool(task.is_solved(node["task_state"]))

    def mcts_select(s: dict[str, Any]) -> int | None:
        """Descend by UCT to a node to expand; terminal or dead-end leaves are scored and backed up."""
        nodes, mcts = s["nodes"], s["mcts"]
        while mcts["iteration"] < mcts_iters:
            if mcts.get("leaf") is not None:
                return mcts.pop("leaf")
            node = nodes[0]
            while node["expanded"] and not node["terminal"]:
                child = uct_pick(nodes, node)
                if child is None:
                    break
                node = child
            if not node["expanded"] and not node["terminal"] and not node["invalid"] and node["depth"] < max_depth:
                return node["id"]
            backprop(nodes, node["id"], leaf_reward(node))
            mcts["iteration"] += 1
            if node["id"] == 0:  # the root itself is exhausted
                break
        return None

    def select(s: dict[str, Any]) -> int | None:
        if strategy == "mcts":
            return mcts_select(s)
        frontier = s["frontier"]
        if not frontier:
            return None
        return frontier.pop() if strategy == "dfs" else frontier.pop(0)

    # -- nodes --------------------------------------------------------------------------------------

    def start(s: SearchState) -> dict[str, Any]:
        root = _node(0, None, None, 0, None, 1.0)
        root["task_state"] = task.initial_state(s["problem"])
        mark(root)
        return {"nodes": [root], "frontier": [] if root["terminal"] else [0], "next_level": [], "expansions": 0,
                "mcts": {"iteration": 0, "leaf": None}, "usage": _new_usage(), "started": time.time(),
                "done": is_solution(root) and stop_at_first_solution, "result": {}}

    def propose(s: SearchState) -> dict[str, Any]:
        if not s.get("nodes") or s.get("done"):  # a new search (a finished thread starts over)
            try:
                s = {**s, **start(s)}
            except (ValueError, TypeError, KeyError) as exc:
                return finish({**s, "nodes": [], "usage": _new_usage(), "started": time.time()},
                              failure=f"bad problem: {exc}")
            if s["done"]:
                return finish(s)
        s = {**s, "nodes": [dict(n) for n in s["nodes"]], "frontier": list(s["frontier"]),
             "mcts": dict(s["mcts"]), "usage": dict(s["usage"])}
        current = select(s)
        if current is None or s["expansions"] >= max_expansions:
            return finish(s)
        node = s["nodes"][current]
        try:
            candidates = metered(s["usage"], lambda calls: propose_candidates(node["task_state"], current, calls))
        except Exception as exc:  # a generator that raises ends this search, recorded, not the caller's run
            return finish(s, failure=f"generator failed at node {current}: {type(exc).__name__}: {exc}")
        return {**s, "current": current, "state": node["state"], "candidates": candidates, "verdict": None}

    srm_node = make_srm_node(srm, cache=cache, seed=seed, **rule) if evaluator == "srm" else None

    def self_eval(s: SearchState) -> dict[str, Any]:
        usage = dict(s["usage"])
        task_state = s["nodes"][s["current"]]["task_state"]

        def grade(calls: list[Any]) -> list[float]:
            grades = []
            for cand in s["candidates"]:
                scored = generator.score_choices(task.self_eval_prompt(task_state, cand["text"]), [" Yes", " No"])
                calls.append(scored)
                yes, no = scored
                grades.append(1.0 / (1.0 + math.exp(no.logprob - yes.logprob)))
            return grades

        try:
            grades = metered(usage, grade)
        except Exception as exc:
            return finish({**s, "usage": usage}, failure=f"self-evaluation failed: {type(exc).__name__}: {exc}")
        verdict = ranked_verdict(s["candidates"], grades, threshold=self_eval_threshold)
        emit({"event": "self_eval_verdict", **verdict})
        return {"verdict": verdict, "usage": usage}

    def unevaluated(candidates: list[dict[str, Any]]) -> dict[str, Any]:
        logp = [c["logprob"] / c["num_tokens"] for c in candidates]
        return ranked_verdict(candidates, [math.exp(x) for x in logp], threshold=0.0)

    def expand(s: SearchState) -> dict[str, Any]:
        nodes = [dict(n) for n in s["nodes"]]
        frontier, next_level = list(s["frontier"]), list(s.get("next_level") or [])
        mcts, usage = dict(s["mcts"]), dict(s["usage"])
        parent = nodes[s["current"]]
        parent["expanded"], parent["children"] = True, list(parent["children"])
        usage["expansions"] += 1
        candidates = s.get("candidates") or []
        verdict = s.get("verdict") or (unevaluated(candidates) if candidates else None)
        if evaluator == "srm" and s.get("verdict"):
            scored = sum(not d["cached"] for d in verdict["decisions"])
            usage["srm_calls"] += int(scored > 0)
            usage["srm_scored"] += scored
            usage["cache_hits"] += len(verdict["decisions"]) - scored
        accepted_kids = []
        for j, decision in enumerate(verdict["decisions"] if verdict else []):
            child = _node(len(nodes), parent["id"], decision["text"].strip(), parent["depth"] + 1, decision,
                          float(decision["score"]))
            nodes.append(child)
            parent["children"].append(child["id"])
            if not decision["accepted"]:
                continue  # rejected: recorded for the trace, never stepped or expanded
            child["cum_score"] = parent["cum_score"] + math.log(max(child["score"], 1e-12))
            try:
                child["task_state"] = task.step(parent["task_state"], child["action"])
            except ValueError as exc:
                child["invalid"], child["terminal"] = str(exc), True
                continue
            mark(child)
        order = [parent["children"][i] for i in verdict["order"]] if verdict else []
        for child_id in order:
            child = nodes[child_id]
            if not child["terminal"] and not child["invalid"] and child["depth"] < max_depth:
                accepted_kids.append(child_id)
        emit({"event": "expand", "node": parent["id"], "children": parent["children"],
              "accepted": order, "solved": [c for c in order if nodes[c]["solved"]]})
        solved = [c for c in order if is_solution(nodes[c])]

        if strategy == "bfs":
            frontier.extend(accepted_kids)
        elif strategy == "dfs":
            frontier.extend(reversed(accepted_kids))  # the best is popped first
        elif strategy == "beam":
            next_level.extend(accepted_kids)
            if not frontier:
                next_level.sort(key=lambda c: (-nodes[c]["cum_score"], c))
                frontier, next_level = next_level[:beam_width], []
        elif solved:  # mcts: a solution ends the iteration with its reward
            backprop(nodes, solved[0], leaf_reward(nodes[solved[0]]))
            mcts["iteration"] += 1
        elif accepted_kids:  # mcts: simulate by following the best accepted child
            mcts["leaf"] = accepted_kids[0]
        else:  # mcts: nothing left to follow; back up what this branch reached
            end = order[0] if order else parent["id"]
            backprop(nodes, end, leaf_reward(nodes[end]))
            mcts["iteration"] += 1
        out = {"nodes": nodes, "frontier": frontier, "next_level": next_level, "mcts": mcts, "usage": usage,
               "expansions": s["expansions"] + 1, "candidates": [], "verdict": None}
        if solved and stop_at_first_solution:
            return finish({**s, **out})
        return out

    def finish(s: dict[str, Any], failure: str | None = None) -> dict[str, Any]:
        nodes = s.get("nodes") or []
        usage = dict(s.get("usage") or _new_usage())
        usage["wall_s"] = round(time.time() - s.get("started", time.time()), 3)
        result: dict[str, Any] = {"solved": False, "answer": None, "path": [], "failure": failure, "usage": usage}
        if nodes:
            solutions = [n for n in nodes if is_solution(n)]
            reached = [n for n in nodes if n["task_state"] is not None and not n["invalid"]]
            if solutions and sees_goal:  # the shortest plan reaching the goal
                best = min(solutions, key=lambda n: (n["depth"], n["id"]))
            elif solutions:  # the answer the search trusts most
                best = max(solutions, key=lambda n: (path_value(n), -n["id"]))
            else:  # no solution: how far the search got
                best = max(reached, key=lambda n: (n["depth"], n["cum_score"], -n["id"]))
            result.update(solved=bool(task.is_solved(best["task_state"])), answer=task.answer(best["task_state"]),
                          path=_path_to(nodes, best["id"]))
        if trace_dir is not None and nodes:
            result["trace_path"] = str(write_search_trace(task, {**s, "nodes": nodes, "result": result}, trace_dir,
                                                          strategy=strategy, evaluator=evaluator,
                                                          params={"k": k, "max_depth": max_depth, **rule}))
        emit({"event": "done", **{key: result[key] for key in ("solved", "answer", "path", "failure")}})
        return {**{key: s[key] for key in s if key in SearchState.__annotations__}, "result": result,
                "usage": usage, "done": True, "candidates": [], "verdict": None}

    def after_propose(s: SearchState) -> str:
        if s.get("done"):
            return END
        if not s.get("candidates"):
            return "expand"
        return "expand" if evaluator == "none" else evaluator

    def after_expand(s: SearchState) -> str:
        return END if s.get("done") else "propose"

    builder = StateGraph(SearchState)
    builder.add_node("propose", propose)
    if evaluator == "srm":
        builder.add_node("srm", srm_node)
        builder.add_edge("srm", "expand")
    elif evaluator == "self_eval":
        builder.add_node("self_eval", self_eval)
        builder.add_conditional_edges("self_eval", lambda s: END if s.get("done") else "expand", ["expand", END])
    builder.add_node("expand", expand)
    builder.add_edge(START, "propose")
    targets = ["expand", END] + ([evaluator] if evaluator != "none" else [])
    builder.add_conditional_edges("propose", after_propose, targets)
    builder.add_conditional_edges("expand", after_expand, ["propose", END])
    graph = builder.compile(checkpointer=checkpointer, name=f"tree_search_{strategy}_{evaluator}")
    budget = max_expansions + (mcts_iters if strategy == "mcts" else 0)
    return graph.with_config(recursion_limit=STEPS_PER_EXPANSION * budget + 10)


def search_trace(task: Task, final_state: dict[str, Any], *, strategy: str, evaluator: str,
                 params: dict[str, Any]) -> dict[str, Any]:
    """The trace of a finished search (format of ``srm_agent.trace``)."""
    nodes = final_state.get("nodes") or []
    result = final_state.get("result") or {}
    on_path = set(result.get("path") or [])
    return {
        "version": 1, "task": task.name, "problem": repr(final_state.get("problem")), "strategy": strategy,
        "evaluator": evaluator, "params": params,
        "nodes": [{"id": n["id"], "parent": n["parent"], "action": n["action"], "depth": n["depth"],
                   "state": n["state"], "decision": n["decision"], "expanded": n["expanded"],
                   "terminal": n["terminal"], "solved": n["solved"], "visits": n["visits"], "value": n["value"],
                   "invalid": n["invalid"], "on_path": n["id"] in on_path} for n in nodes],
        "path": result.get("path") or ([0] if nodes else []), "solved": bool(result.get("solved")),
        "answer": result.get("answer"), "failure": result.get("failure"), "usage": result.get("usage") or {},
    }


def write_search_trace(task: Task, final_state: dict[str, Any], directory: str | Path, **meta: Any) -> Path:
    from srm_agent.trace import write_trace

    path = Path(directory) / f"{task.name}-{meta['strategy']}-{meta['evaluator']}-{uuid.uuid4().hex[:8]}.json"
    return write_trace(search_trace(task, final_state, **meta), path)


def studio_graph():
    """The graph `langgraph dev` serves: embedded models, task and options from the environment.

    ``SRM_TASK`` names a task factory as ``module:attribute`` (default ``srm_tasks.toy:ReachNumber``);
    ``SRM_STRATEGY``, ``SRM_EVALUATOR``, ``SRM_K`` and ``SRM_MAX_DEPTH`` set the search;
    ``SRM_PATH`` an SRM checkpoint (default: the embedded SRM); ``REDIS_URL`` a shared score cache.
    """
    import importlib
    import os

    from srm_agent.cache import RedisScoreCache
    from srm_agent.embedded import default_generator, default_srm
    from srm_agent.srm import SpeculativeRewardModel

    module_name, _, attribute = os.environ.get("SRM_TASK", "srm_tasks.toy:ReachNumber").partition(":")
    task = getattr(importlib.import_module(module_name), attribute)()
    evaluator = os.environ.get("SRM_EVALUATOR", "srm")
    srm = None
    if evaluator == "srm":
        srm = SpeculativeRewardModel.from_pretrained(os.environ["SRM_PATH"]) if os.environ.get("SRM_PATH") \
            else default_srm()
    cache = RedisScoreCache(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None
    return build_tree_search(task, default_generator(), srm, strategy=os.environ.get("SRM_STRATEGY", "bfs"),
                             evaluator=evaluator, k=int(os.environ.get("SRM_K", "4")),
                             max_depth=int(os.environ.get("SRM_MAX_DEPTH", "5")), cache=cache)

