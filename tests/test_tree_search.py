"""The search graph on the reach-number task with a tiny generator and an oracle SRM."""

from __future__ import annotations

import re
from typing import Any, TypedDict

import pytest

from graphs.tree_search import build_tree_search
from srm_agent.errors import BackendError
from srm_tasks.toy import ACTIONS, ReachNumber, shortest_plan

PROBLEM = {"start": 1, "target": 11}  # optimal: add 1, add 3, double, add 1 ... 4 steps
TASK = ReachNumber()


class OracleSRM:
    """Knows the optimal distance: actions on a shortest plan score high, the rest low."""

    fingerprint = "oracle-v1"

    def __init__(self) -> None:
        self.calls = 0

    def score(self, state: str, actions: list[str]) -> list[float]:
        self.calls += 1
        value, target = map(int, re.match(r"value (\d+), target (\d+)", state).groups())
        best = len(shortest_plan(value, target))
        out = []
        for action in actions:
            after = ACTIONS[action.strip()](value)
            out.append(6.0 if after <= target and len(shortest_plan(after, target)) == best - 1 else -6.0)
        return out


class FlatSRM:
    """No opinion: every action gets logit 0, so the generator's own preferences decide."""

    fingerprint = "flat-v1"

    def score(self, state: str, actions: list[str]) -> list[float]:
        return [0.0] * len(actions)


def run(graph, problem=PROBLEM, **config):
    return graph.invoke({"problem": problem}, config or None)


def nodes_of(final: dict[str, Any]) -> list[dict[str, Any]]:
    from srm_agent.search.tree import nodes_of as stored_nodes

    return stored_nodes(final["tree"])


def optimal_len(problem=PROBLEM) -> int:
    return len(shortest_plan(problem["start"], problem["target"]))


@pytest.mark.parametrize("strategy", ["bfs", "dfs", "beam", "mcts"])
def test_each_strategy_solves_with_an_oracle_srm(tiny_generator, strategy):
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy=strategy, k=3, max_depth=6,
                              beam_width=3, mcts_iters=20, mode="threshold")
    result = run(graph)["result"]
    assert result["solved"], result
    steps = result["answer"].split(", ")
    state = TASK.initial_state(PROBLEM)
    for step in steps:
        state = TASK.step(state, step)
    assert TASK.is_solved(state)
    assert len(steps) == optimal_len()  # the oracle only accepts optimal steps


def test_rejected_candidates_are_never_expanded(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="bfs", k=3, max_depth=6,
                              goal_test="end", max_expansions=30)
    nodes = nodes_of(run(graph))
    rejected = [n for n in nodes if n["decision"] and not n["decision"]["accepted"]]
    assert rejected, "the oracle must have rejected something for this test to mean anything"
    for n in rejected:
        assert not n["expanded"] and n["task_state"] is None and not n["children"]
    expanded = [n for n in nodes if n["expanded"]]
    assert all(n["parent"] is None or nodes[n["id"]]["decision"]["accepted"] for n in expanded)


def test_self_evaluation_is_counted_as_generator_cost(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, strategy="bfs", evaluator="self_eval", k=3, max_depth=2,
                              goal_test="end")
    final = run(graph)
    usage = final["result"]["usage"]
    graded = sum(1 for n in nodes_of(final) if n["decision"])  # one self-evaluation per distinct candidate
    assert usage["proposal"]["calls"] == usage["expansions"]  # one score_choices per expansion
    assert usage["evaluation"]["calls"] == graded > 0
    assert usage["generator_calls"] == usage["proposal"]["calls"] + usage["evaluation"]["calls"]
    assert usage["srm_calls"] == 0 and usage["evaluation"]["prompt_tokens"] > 0
    decision = next(n["decision"] for n in nodes_of(final) if n["decision"])
    assert decision["reward"] == pytest.approx(decision["intuition"] + decision["self_eval"])


def test_srm_usage_and_cache_hits_are_counted(tiny_generator):
    from srm_agent.cache import InMemoryScoreCache

    srm, cache = OracleSRM(), InMemoryScoreCache()
    graph = build_tree_search(TASK, tiny_generator, srm, strategy="bfs", k=3, max_depth=5, cache=cache)
    first = run(graph)["result"]["usage"]
    second = run(graph)["result"]["usage"]
    assert first["srm_calls"] == srm.calls - second["srm_calls"] > 0
    assert second["srm_calls"] == 0 and second["cache_hits"] == first["srm_scored"]
    assert first["evaluation"]["calls"] == 0 and first["srm_seconds"] >= 0


def test_chain_of_thought_baseline_is_one_path(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, strategy="dfs", evaluator="prior", k=1, max_depth=4,
                              goal_test="end")
    final = run(graph)
    assert all(len(n["children"]) <= 1 for n in nodes_of(final))
    assert final["result"]["usage"]["srm_calls"] == 0


def test_results_reproduce_with_a_seed(tiny_generator):
    def signature(seed):
        graph = build_tree_search(TASK, tiny_generator, FlatSRM(), strategy="mcts", k=2, max_depth=6, seed=seed,
                                  mcts_iters=6, goal_test="end")
        return [(n["parent"], n["action"], n["decision"]["accepted"] if n["decision"] else None)
                for n in nodes_of(run(graph))]

    assert signature(5) == signature(5)
    assert any(signature(5) != signature(s) for s in (6, 7, 8))


def test_a_twelve_step_plan_fits_in_the_recursion_limit(tiny_generator):
    chain = build_tree_search(TASK, tiny_generator, strategy="dfs", evaluator="prior", k=1, max_depth=12,
                              goal_test="end")
    final = run(chain, {"start": 0, "target": 100_000})  # out of reach in 12 steps: the chain runs to the cap
    assert len(final["result"]["path"]) == 13 and nodes_of(final)[final["result"]["path"][-1]]["depth"] == 12
    searched = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="mcts", k=3, max_depth=12,
                                 mcts_iters=12, mode="threshold")
    assert run(searched, {"start": 0, "target": 1000})["result"]["solved"]


def test_budget_stops_the_search(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="bfs", k=3, max_depth=10,
                              max_expansions=3, goal_test="end", mode="threshold", threshold=0.0)
    assert run(graph)["result"]["usage"]["expansions"] == 3


def test_works_as_a_subgraph_and_inside_a_node(tiny_generator):
    from langgraph.graph import END, START, StateGraph

    search = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="beam", k=3, max_depth=6, beam_width=2)

    class App(TypedDict, total=False):
        problem: Any
        result: dict[str, Any]
        summary: str

    def summarise(s: App) -> App:
        return {"summary": f"solved={s['result']['solved']} plan={s['result']['answer']}"}

    builder = StateGraph(App)
    builder.add_node("search", search)
    builder.add_node("summarise", summarise)
    builder.add_edge(START, "search")
    builder.add_edge("search", "summarise")
    builder.add_edge("summarise", END)
    app = builder.compile()
    out = app.invoke({"problem": PROBLEM}, {"recursion_limit": search.config["recursion_limit"]})
    assert out["summary"].startswith("solved=True")

    def call_search(s: App) -> App:
        return {"result": search.invoke({"problem": s["problem"]})["result"]}

    wrapper = StateGraph(App)
    wrapper.add_node("search", call_search)
    wrapper.add_edge(START, "search")
    assert wrapper.compile().invoke({"problem": PROBLEM})["result"]["solved"]


def test_a_checkpointed_search_resumes_after_an_interruption_and_stores_deltas(tiny_generator):
    from langgraph.checkpoint.memory import InMemorySaver
    from langgraph.errors import GraphRecursionError

    kwargs = dict(strategy="bfs", k=3, max_depth=6, goal_test="end", max_expansions=8, seed=3)
    whole = run(build_tree_search(TASK, tiny_generator, OracleSRM(), **kwargs))
    saver = InMemorySaver()
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), checkpointer=saver, **kwargs)
    thread = {"configurable": {"thread_id": "search-1"}}
    with pytest.raises(GraphRecursionError):
        graph.invoke({"problem": PROBLEM}, {**thread, "recursion_limit": 7})
    resumed = graph.invoke(None, {**thread, "recursion_limit": 100})

    def shape(final):  # log-probs may differ in the last bits: the generator's prefix cache differs after a resume
        return [(n["parent"], n["action"], n["expanded"], n["decision"] and n["decision"]["accepted"], n["task_state"])
                for n in nodes_of(final)]

    assert shape(resumed) == shape(whole)
    assert resumed["result"]["answer"] == whole["result"]["answer"]
    # checkpoints hold the tree as deltas: a whole tree only where a search starts (it replaces the last one) and
    # where the interrupted thread resumed, never at every step
    checkpoints = list(saver.list(thread))
    holding_tree = [c for c in checkpoints if "tree" in c.checkpoint["channel_values"]]
    assert len(checkpoints) > 10 and len(holding_tree) <= 2
    fresh = graph.invoke({"problem": {"start": 2, "target": 9}}, {**thread, "recursion_limit": 100})
    assert nodes_of(fresh)[0]["task_state"]["value"] == 2 and fresh["result"]["usage"]["expansions"] <= 8


def test_decisions_stream_as_custom_events(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="bfs", k=3, max_depth=6)
    events = [e for e in graph.stream({"problem": PROBLEM}, stream_mode="custom")]
    verdicts = [e for e in events if e["event"] == "srm_verdict"]
    assert verdicts and all({"sr", "rc", "score", "accepted"} <= set(e["decisions"][0]) for e in verdicts)
    assert events[-1]["event"] == "done" and events[-1]["solved"]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"strategy": "astar"}, "strategy"),
        ({"evaluator": "oracle"}, "evaluator"),
        ({"k": 0}, "k must be"),
        ({"max_depth": 0}, "max_depth"),
        ({"beam_width": -1, "strategy": "beam"}, "width"),
        ({"evaluator": "srm", "srm": None}, "needs an srm"),
        ({"goal_test": "sometimes"}, "goal_test"),
        ({"alpah": 0.3}, "alpah"),
    ],
)
def test_bad_configuration_is_refused(tiny_generator, kwargs, message):
    srm = kwargs.pop("srm", OracleSRM())
    with pytest.raises((ValueError, TypeError), match=message):
        build_tree_search(TASK, tiny_generator, srm, **kwargs)


@pytest.mark.parametrize("error", [BackendError("server said 503"), TimeoutError("no answer in 30 s"),
                                   MemoryError("out of memory")])
def test_a_failing_backend_is_a_recorded_failure(error):
    class Broken:
        def propose(self, *args, **kwargs):
            raise error

        score_choices = propose

    final = run(build_tree_search(TASK, Broken(), OracleSRM()))
    assert final["done"] and not final["result"]["solved"]
    assert str(error) in final["result"]["failure"]


def test_a_bug_in_a_domain_raises_with_its_traceback(tiny_generator):
    class Buggy(ReachNumber):
        def prompt(self, state):
            return state["no such key"]

    with pytest.raises(KeyError, match="no such key"):
        run(build_tree_search(Buggy(), tiny_generator, OracleSRM()))


def test_no_candidates_and_bad_problems_end_cleanly(tiny_generator):
    class NoActions(ReachNumber):
        def legal_actions(self, state):
            return []

    final = run(build_tree_search(NoActions(), tiny_generator, OracleSRM(), strategy="dfs"))
    assert final["done"] and not final["result"]["solved"] and final["result"]["usage"]["expansions"] == 1
    bad = run(build_tree_search(TASK, tiny_generator, OracleSRM()), {"start": "one"})
    assert "bad problem" in bad["result"]["failure"]


def test_free_text_proposals_are_sampled_and_invalid_steps_counted(tiny_generator):
    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), proposals="sample", k=3, max_depth=2,
                              evaluator="prior", max_new_tokens=4)
    final = run(graph)
    children = [n for n in nodes_of(final) if n["parent"] is not None]
    assert children and all(n["invalid"] for n in children if n["decision"]["accepted"])
    usage = final["result"]["usage"]
    assert usage["generated_tokens"] > 0 and usage["invalid_steps"] == sum(1 for n in children if n["invalid"])


@pytest.mark.parametrize("evaluator", ["srm", "self_eval", "prior", "random"])
def test_each_search_writes_a_trace_the_viewer_renders(tiny_generator, tmp_path, evaluator):
    from srm_agent.trace import load_trace, render_html

    graph = build_tree_search(TASK, tiny_generator, OracleSRM(), strategy="mcts", evaluator=evaluator, k=3,
                              max_depth=5, mcts_iters=4, trace_dir=tmp_path)
    result = run(graph)["result"]
    trace = load_trace(result["trace_path"])
    assert trace["path"] == result["path"] and trace["usage"] == result["usage"]
    rejected = [n for n in trace["nodes"] if n["decision"] and not n["decision"]["accepted"]]
    assert all(not n["expanded"] for n in rejected)
    page = render_html(trace)
    assert page.count("<svg") >= 1 and "add 3" in page
    again = run(graph)["result"]
    assert again["trace_path"] == result["trace_path"] and len(list(tmp_path.iterdir())) == 1  # same search, same file


class HiddenGoal:
    """Reach-number whose target check plays a hidden reference answer (as GSM8K's gold does)."""

    goal_visible = False

    def __init__(self) -> None:
        self.inner = ReachNumber()
        self.graded = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def is_solved(self, state: dict[str, Any]) -> bool:
        self.graded += 1
        return self.inner.is_solved(state)

    def goal_progress(self, state: dict[str, Any]) -> float:
        raise AssertionError("a search must not read the goal of a task whose goal is hidden")


@pytest.mark.parametrize("strategy", ["bfs", "dfs", "beam", "mcts"])
def test_a_hidden_goal_is_only_graded_once_the_search_has_answered(tiny_generator, strategy):
    task = HiddenGoal()
    graph = build_tree_search(task, tiny_generator, OracleSRM(), strategy=strategy, k=3, max_depth=6,
                              beam_width=3, mcts_iters=20, mode="threshold")
    result = run(graph)["result"]
    assert task.graded == 1  # the answer it committed to, after the search
    # the oracle accepts only optimal steps, so the first answered state is the target itself
    assert result["solved"] and len(result["answer"].split(", ")) == optimal_len()


def test_without_a_visible_goal_the_best_scored_answer_is_returned(tiny_generator):
    task = HiddenGoal()
    graph = build_tree_search(task, tiny_generator, FlatSRM(), strategy="bfs", k=3, max_depth=5, goal_test="end",
                              max_expansions=40, seed=3)
    final = run(graph)
    answered = [n for n in nodes_of(final) if n["terminal"] and n["task_state"] is not None]
    assert len({n["task_state"]["value"] for n in answered}) > 1, "needs answers to choose between"
    best = max(answered, key=lambda n: (n["reward_sum"] / n["depth"], -n["id"]))
    assert final["result"]["answer"] == task.answer(best["task_state"])
    assert final["result"]["solved"] == task.inner.is_solved(best["task_state"]) and task.graded == 1


class OddValuesGiveNoAnswer(HiddenGoal):
    """As a chain that ends in "The answer is not possible to determine": terminal, but no answer."""

    def answer(self, state: dict[str, Any]) -> str | None:
        return None if state["value"] % 2 else self.inner.answer(state)


def test_a_terminal_state_without_an_answer_does_not_end_the_search(tiny_generator):
    task = OddValuesGiveNoAnswer()
    final = run(build_tree_search(task, tiny_generator, FlatSRM(), strategy="bfs", k=3, max_depth=6, seed=1))
    nodes = nodes_of(final)
    chosen = final["result"]["path"][-1]
    skipped = [n for n in nodes[:chosen] if n["terminal"] and n["task_state"] and n["task_state"]["value"] % 2]
    assert skipped, "the search must have met an unanswered terminal state first for this test to mean anything"
    assert final["result"]["answer"] is not None and nodes[chosen]["terminal"]


# -- plug-ins defined here, outside the package -----------------------------------------------------------

class GreedyStrategy:
    """Expand only the best child of each node: a user's own strategy."""

    name = "greedy_chain"
    eager = True

    def start(self, tree, ctx):
        tree.set_meta("next", 0)

    def select(self, tree, ctx):
        node_id = tree.meta("next")
        tree.set_meta("next", None)
        return node_id if node_id is not None and ctx.expandable(tree[node_id]) else None

    def update(self, tree, parent, children, ctx):
        if children:
            tree.set_meta("next", children[0])

    def result(self, tree, ctx):
        return None

    def options(self):
        return {}


class LongestActionFirst:
    """Prefers longer action texts and rejects "double": a user's own evaluator."""

    name = "longest_first"

    def evaluate(self, ctx, candidates):
        from srm_agent.search.evaluators import Evaluation, ranked_verdict

        texts = list(dict.fromkeys(c["text"] for c in candidates))
        verdict = ranked_verdict(candidates, [len(t) + 0.5 * ("1" in t) for t in texts])
        for decision in verdict["decisions"]:
            decision["accepted"] = decision["text"] != "double"
        verdict["order"] = [i for i in verdict["order"] if verdict["decisions"][i]["accepted"]]
        return Evaluation(verdict)


def test_a_users_own_strategy_and_evaluator_plug_in(tiny_generator, tmp_path):
    from srm_agent.search import evaluator_names, strategy_names
    from srm_agent.trace import load_trace

    graph = build_tree_search(TASK, tiny_generator, strategy=GreedyStrategy(), evaluator=LongestActionFirst(), k=3,
                              max_depth=3, goal_test="end", trace_dir=tmp_path)
    final = run(graph)
    nodes = nodes_of(final)
    assert [n["action"] for n in nodes if n["expanded"] and n["parent"] is not None] == ["add 1", "add 1"]
    assert not any(n["expanded"] for n in nodes if n["action"] == "double")
    assert "greedy_chain" in strategy_names() and "longest_first" in evaluator_names()
    trace = load_trace(final["result"]["trace_path"])
    assert (trace["strategy"], trace["evaluator"]) == ("greedy_chain", "longest_first")
    assert "longest_first" in graph.get_graph().nodes
    unknown = {**trace, "strategy": "someone_elses"}  # a plug-in registered in another process: viewable, not writable
    from srm_agent.errors import InputError
    from srm_agent.trace import parse_trace

    assert parse_trace(unknown, registered_names=False).strategy == "someone_elses"
    with pytest.raises(InputError, match="strategy"):
        parse_trace(unknown)


def test_searches_in_two_threads_report_what_they_report_alone(tiny_generator):
    from concurrent.futures import ThreadPoolExecutor

    problems = [PROBLEM, {"start": 2, "target": 17}, {"start": 3, "target": 20}, {"start": 1, "target": 9}]
    graph = build_tree_search(TASK, tiny_generator, FlatSRM(), strategy="beam", k=3, max_depth=5, beam_width=3,
                              goal_test="end", seed=2)

    def outcome(problem):
        result = run(graph, problem)["result"]
        return result["answer"], {k: v for k, v in result["usage"].items() if k not in ("wall_s", "srm_seconds")}

    alone = [outcome(p) for p in problems]
    with ThreadPoolExecutor(2) as pool:
        together = list(pool.map(outcome, problems))
    assert together == alone


def test_searches_run_concurrently_under_ainvoke(tiny_generator):
    import asyncio

    problems = [PROBLEM, {"start": 2, "target": 17}, {"start": 3, "target": 20}]
    graph = build_tree_search(TASK, tiny_generator, FlatSRM(), strategy="mcts", k=3, max_depth=5, mcts_iters=4, seed=4)

    def outcome(final):
        result = final["result"]
        return result["answer"], result["path"], result["usage"]["generator_calls"], result["usage"]["prompt_tokens"]

    alone = [outcome(graph.invoke({"problem": p})) for p in problems]

    async def together():
        return await asyncio.gather(*(graph.ainvoke({"problem": p}) for p in problems))

    assert [outcome(final) for final in asyncio.run(together())] == alone
