"""The Blocksworld domain: simulator against the public gold plans, loaders, generator, English, prompts, search."""

from __future__ import annotations

import json
import random
import re
from collections import deque
from itertools import product
from pathlib import Path

import pytest

from srm_tasks.blocksworld import (BlocksworldTask, action_text, canonical_key, default_pool, facts_text,
                               generate_problems, load_pddl_folder, load_prompt_pool, load_split, parse_action,
                               problem_facts, read_pddl_problem, validate_plan)
from srm_tasks.blocksworld.english import COLOURS
from srm_tasks.blocksworld.problems import make_problem
from srm_tasks.blocksworld.world import OPERATORS, apply, ground, legal_ops, parse_atom
from srm_agent.search.task import Task
from graphs.tree_search import build_tree_search
from tests.conftest import SHARED

BW = SHARED / "data" / "blocksworld"
DATA = BW / "llm-reasoners" / "data"
POOL_V1 = BW / "llm-reasoners" / "prompts" / "pool_prompt_v1.json"
INSTANCES = BW / "LLMs-Planning" / "llm_planning_analysis" / "instances" / "blocksworld"
needs_shared = pytest.mark.skipif(not BW.is_dir(), reason=f"the public Blocksworld data is not at {BW} "
                                                          "(a clone without ../shared; CI has it)")

# -- an independent model of the world: towers as tuples, for BFS distances ------------------------------------


def towers_of(facts) -> tuple[frozenset, str | None]:
    facts = {parse_atom(f) if isinstance(f, str) else f for f in facts}
    above = {f[2]: f[1] for f in facts if f[0] == "on"}
    towers = set()
    for f in facts:
        if f[0] == "ontable":
            tower = [f[1]]
            while tower[-1] in above:
                tower.append(above[tower[-1]])
            towers.add(tuple(tower))
    held = next((f[1] for f in facts if f[0] == "holding"), None)
    return frozenset(towers), held


def moves(node):
    towers, held = node
    if held is None:
        for t in towers:
            yield (towers - {t}) | ({t[:-1]} if len(t) > 1 else set()), t[-1]
    else:
        yield towers | {(held,)}, None
        for t in towers:
            yield (towers - {t}) | {t + (held,)}, None


def reached(node, goal) -> bool:
    towers, held = node
    pairs = {(t[i + 1], t[i]) for t in towers for i in range(len(t) - 1)}
    return all(g[0] == "on" and (g[1], g[2]) in pairs for g in goal)


def bfs_distance(facts, goal_strings) -> int:
    goal = [parse_atom(g) for g in goal_strings]
    start = towers_of(facts)
    seen, queue = {start: 0}, deque([start])
    while queue:
        node = queue.popleft()
        if reached(node, goal):
            return seen[node]
        for nxt in moves(node):
            nxt = (frozenset(nxt[0]), nxt[1])
            if nxt not in seen:
                seen[nxt] = seen[node] + 1
                queue.append(nxt)
    raise AssertionError("unreachable goal")


def renamed(problem: dict, seed: int) -> dict:
    blocks = sorted({a for f in problem["init"] for a in parse_atom(f)[1:]})
    target = random.Random(seed).sample(list(COLOURS), len(blocks))
    mapping = dict(zip(blocks, target))

    def rename(facts):
        return sorted("(" + " ".join([a[0], *(mapping[x] for x in a[1:])]) + ")" for a in map(parse_atom, facts))

    return {**problem, "id": problem["id"] + "-renamed", "init": rename(problem["init"]),
            "goal": rename(problem["goal"])}


# -- fixtures -------------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def bw_basic() -> list[dict]:
    return load_split(DATA / "bw_basic.json")


@pytest.fixture(scope="module")
def public_problems(bw_basic) -> list[dict]:
    return bw_basic + load_split(DATA / "bw_basic_sup.json")


@pytest.fixture(scope="module")
def generated() -> list[dict]:
    return generate_problems(24, blocks=(3, 6), seed=11)


PROBLEM = make_problem("hand-made", frozenset(map(parse_atom, [
    "(clear b)", "(clear d)", "(handempty)", "(on b c)", "(on c a)", "(ontable a)", "(ontable d)"])),
    frozenset(map(parse_atom, ["(on a b)", "(on c d)"])))
PLAN = ["unstack the blue block from on top of the orange block", "put down the blue block",
        "unstack the orange block from on top of the red block", "stack the orange block on top of the yellow block",
        "pick up the red block", "stack the red block on top of the blue block"]

# -- the simulator ------------------------------------------------------------------------------------------------


@needs_shared
def test_operators_are_the_domain_file():
    from pddl import parse_domain

    domain = parse_domain(DATA / "generated_domain.pddl")
    assert domain.name == "blocksworld-4ops"

    def atoms(formula):
        parts = getattr(formula, "operands", [formula])
        return {(p.name, *("?" + t.name for t in p.terms)) for p in parts if hasattr(p, "terms")}

    found = {}
    for action in domain.actions:
        negated = [o.argument for o in action.effect.operands if hasattr(o, "argument")]
        found[action.name] = (tuple("?" + p.name for p in action.parameters), atoms(action.precondition),
                              atoms(action.effect), {(p.name, *("?" + t.name for t in p.terms)) for p in negated})
    assert found == {name: (params, set(pre), set(add), set(delete))
                     for name, (params, pre, add, delete) in OPERATORS.items()}
    assert (DATA / "generated_domain.pddl").read_bytes() == (INSTANCES / "generated_domain.pddl").read_bytes()


def test_legal_actions_are_exactly_the_applicable_ones(generated):
    rng = random.Random(0)
    for problem in generated[:8]:
        state, _ = problem_facts(problem)
        blocks = sorted({a for f in state for a in f[1:]})
        for _ in range(12):
            everything = [(name, *args) for name, spec in OPERATORS.items()
                          for args in product(blocks, repeat=len(spec[0]))]
            applicable = []
            for op in everything:
                pre, _, _ = ground(op)
                if all(f in state for f in pre):
                    applicable.append(op)
            legal = legal_ops(state)
            assert sorted(legal) == sorted(applicable) and legal == legal_ops(state)
            state = apply(state, rng.choice(legal))


@needs_shared
def test_every_bw_basic_gold_plan_is_valid_and_optimal(bw_basic):
    assert len(bw_basic) == 501
    for problem in bw_basic:
        assert validate_plan(problem, problem["gold_plan"]) == (True, True, None), problem["id"]
        assert bfs_distance(problem["init"], problem["goal"]) == problem["optimal_length"], problem["id"]


@needs_shared
def test_split_v1_gold_plans_are_valid():
    files = sorted((DATA / "split_v1").glob("split_v1_step_*_data.json"))
    assert len(files) == 6
    for path in files:
        problems = load_split(path)
        step = int(re.search(r"step_(\d+)", path.name)[1])
        for problem in problems[::10]:
            assert problem["optimal_length"] == step == len(problem["gold_plan"])
            assert validate_plan(problem, problem["gold_plan"]) == (True, True, None), (path.name, problem["id"])


def test_validate_plan_names_the_failing_action():
    assert validate_plan(PROBLEM, PLAN) == (True, True, None)
    assert validate_plan(PROBLEM, PLAN[:4]) == (True, False, None)
    valid, reached_goal, error = validate_plan(PROBLEM, [PLAN[0], PLAN[2], *PLAN[1:]])
    assert (valid, reached_goal) == (False, False)
    assert error.startswith("plan[1] 'unstack the orange block from on top of the red block': cannot unstack")
    assert error.endswith("it needs that the hand is empty")
    valid, _, error = validate_plan(PROBLEM, [PLAN[0], "put the blue block down"])
    assert not valid and error.startswith("plan[1] 'put the blue block down': not a Blocksworld action")
    valid, _, error = validate_plan(PROBLEM, ["pick up the gold block"])
    assert not valid and "plan[0]" in error and "no block l" in error
    with pytest.raises(TypeError):
        validate_plan(PROBLEM, "\n".join(PLAN))
    with pytest.raises(ValueError, match=re.escape("problem bad: block a is in two places")):
        validate_plan({"id": "bad", "init": ["(handempty)", "(ontable a)", "(on a b)", "(ontable b)"],
                       "goal": ["(on a b)"]}, [])


# -- reading files --------------------------------------------------------------------------------------------------


ON_TABLE = "(handempty) (ontable a) (ontable b) (clear a) (clear b)"


def instance(init: str = ON_TABLE, goal: str = "(and (on a b))", domain: str = "blocksworld-4ops") -> str:
    return f"(define (problem p) (:domain {domain}) (:objects a b)\n(:init {init})\n(:goal {goal}))\n"


def test_pddl_files_are_read_strictly(tmp_path):
    (tmp_path / "good.pddl").write_text(instance())
    assert read_pddl_problem(tmp_path / "good.pddl") == {
        "id": f"{tmp_path.name}/good", "init": ["(clear a)", "(clear b)", "(handempty)", "(ontable a)", "(ontable b)"],
        "goal": ["(on a b)"], "optimal_length": None, "gold_plan": None}
    bad = {
        "cut.pddl": instance()[:60],
        "domain.pddl": instance(domain="logistics"),
        "negated.pddl": instance(goal="(not (on a b))"),
        "twice.pddl": instance(init="(handempty) (ontable a) (on a b) (ontable b) (clear a)"),
        "unplaced.pddl": instance(init="(handempty) (ontable a) (clear a)"),
        "predicate.pddl": instance(init=ON_TABLE + " (red a)"),
        "stranger.pddl": instance(goal="(on a z)"),
    }
    for name, text in bad.items():
        (tmp_path / name).write_text(text)
        with pytest.raises(ValueError, match=re.escape(str(tmp_path / name))):
            read_pddl_problem(tmp_path / name)
    with pytest.raises(ValueError, match="missing.pddl"):
        read_pddl_problem(tmp_path / "missing.pddl")


@pytest.mark.parametrize(("init", "why"), [
    (["(handempty)", "(on a b)", "(on b a)", "(ontable c)", "(clear c)"], "cycle"),
    (["(handempty)", "(ontable a)", "(on b a)", "(on c a)", "(clear b)", "(clear c)"], "carries two blocks"),
    (["(holding a)", "(on b a)", "(clear b)"], "held block"),
    (["(handempty)", "(ontable a)"], "(clear a) must hold"),
    (["(ontable a)", "(clear a)"], "hand must either be empty"),
    (["(handempty)", "(clear a)"], "neither on the table"),
])
def test_impossible_initial_states_are_rejected(init, why):
    with pytest.raises(ValueError, match=re.escape(why)):
        problem_facts({"id": "p", "init": init, "goal": ["(on a b)"]})


def test_rap_split_paths_resolve_or_fail_by_name(tmp_path):
    nested = tmp_path / "data" / "split"
    nested.mkdir(parents=True)
    instances = tmp_path / "instances"
    instances.mkdir()
    (instances / "instance-1.pddl").write_text(instance())
    absolute = str(instances / "instance-1.pddl")
    split = nested / "split.json"
    split.write_text(json.dumps([["instances/instance-1.pddl", "(pick-up a)\n(stack a b)\n", 2],
                                 [absolute, "(pick-up a)\n(stack a b)\n", 2]]))
    problems = load_split(split)
    assert [p["id"] for p in problems] == ["instances/instance-1"] * 2
    assert problems[0]["gold_plan"] == ["pick up the red block", "stack the red block on top of the blue block"]
    split.write_text(json.dumps([["instances/instance-9.pddl", "(pick-up a)\n", 1]]))
    with pytest.raises(FileNotFoundError, match=r"instance file 'instances/instance-9.pddl' not found"):
        load_split(split)
    split.write_text(json.dumps([["instances/instance-1.pddl", "(pick-up a)\n", 2]]))
    with pytest.raises(ValueError, match="record 0: the gold plan has 1 steps, its length says 2"):
        load_split(split)
    split.write_text(json.dumps([["instances/instance-1.pddl", "(fly a)\n", 1]]))
    with pytest.raises(ValueError, match=r"record 0: bad gold plan: not a blocksworld-4ops action: \(fly a\)"):
        load_split(split)


@needs_shared
def test_pddl_folder_loads_in_natural_order():
    problems = load_pddl_folder(INSTANCES / "generated_basic_3")
    assert len(problems) == 101
    assert [p["id"] for p in problems[8:11]] == [f"generated_basic_3/instance-{i}" for i in (9, 10, 11)]
    assert all(p["optimal_length"] is None and p["gold_plan"] is None for p in problems)


# -- problems: identity and generation ----------------------------------------------------------------------------


def test_canonical_key_ignores_block_names_only(generated):
    for i, problem in enumerate(generated):
        assert canonical_key(renamed(problem, i)) == canonical_key(problem)
    assert len({canonical_key(p) for p in generated}) == len(generated)
    other_goal = {**PROBLEM, "goal": ["(on a b)", "(on d c)"]}
    assert canonical_key(other_goal) != canonical_key(PROBLEM)


@needs_shared
def test_public_instances_are_262_distinct_problems(public_problems):
    keys = {canonical_key(p) for p in public_problems}
    assert len(public_problems) == 602 and len(keys) == 262
    assert {canonical_key(renamed(p, 0)) for p in public_problems[:50]} <= keys


def test_generator_makes_distinct_solvable_problems_with_optimal_lengths(generated):
    assert generated == generate_problems(24, blocks=(3, 6), seed=11)
    assert generated != generate_problems(24, blocks=(3, 6), seed=12)
    assert len({p["id"] for p in generated}) == 24
    for problem in generated:
        blocks = {a for f in problem["init"] for a in parse_atom(f)[1:]}
        assert 3 <= len(blocks) <= 6
        assert problem["optimal_length"] == bfs_distance(problem["init"], problem["goal"]) >= 1
        assert validate_plan(problem, problem["gold_plan"]) == (True, True, None)
        assert len(problem["gold_plan"]) == problem["optimal_length"]
        json.dumps(problem)
    with pytest.raises(ValueError, match="blocks must be"):
        generate_problems(1, blocks=(1, 3))


def test_generator_keeps_to_the_asked_plan_lengths():
    short = generate_problems(12, blocks=(3, 4), seed=2, steps=(2, 2))
    assert {p["optimal_length"] for p in short} == {2}
    assert all(bfs_distance(p["init"], p["goal"]) == 2 for p in short)
    assert len({p["id"] for p in short}) == 12
    with pytest.raises(ValueError, match="steps must be"):
        generate_problems(1, steps=(3, 2))
    with pytest.raises(ValueError, match=r"made only \d+ distinct problems .* and \(9, 9\) steps"):
        generate_problems(3, blocks=(2, 2), steps=(9, 9))


@needs_shared
def test_generated_lengths_agree_with_public_gold_lengths(public_problems):
    gold = {canonical_key(p): p["optimal_length"] for p in public_problems}
    comparable = [p for p in generate_problems(60, blocks=(3, 4), seed=5) if canonical_key(p) in gold]
    assert len(comparable) >= 10
    assert all(p["optimal_length"] <= gold[canonical_key(p)] for p in comparable)


# -- English ----------------------------------------------------------------------------------------------------


def test_actions_round_trip_and_reject_anything_else():
    for name, spec in OPERATORS.items():
        for args in product("adl", repeat=len(spec[0])):
            op = (name, *args)
            text = action_text(op)
            assert parse_action(text) == op
            assert parse_action(f"  {text.upper()}. \n") == op
    assert action_text(("unstack", "a", "b")) == "unstack the red block from on top of the blue block"
    assert action_text(("stack", "a", "b")) == "stack the red block on top of the blue block"
    assert action_text(("pick-up", "c")) == "pick up the orange block"
    assert action_text(("put-down", "d")) == "put down the yellow block"
    for bad in ["pick up the red", "pick up the purple block", "stack the red block on the blue block",
                "pick  up the red block", "pick up the red block..", "unstack the red block", "", "[PLAN END]"]:
        with pytest.raises(ValueError, match=re.escape(repr(bad))):
            parse_action(bad)


@needs_shared
def test_rendering_matches_rap():
    import yaml

    config = yaml.safe_load((DATA / "bw_config.yaml").read_text())
    assert {k: f"{v} block" for k, v in COLOURS.items()} == config["encoded_objects"]
    pool = json.loads(POOL_V1.read_text())
    first = pool["example_pool"][0]
    facts = map(parse_atom, ["(clear a)", "(clear c)", "(handempty)", "(on c b)", "(ontable a)", "(ontable b)"])
    assert facts_text(facts) == first["init"]
    assert facts_text([("on", "b", "c")]) == first["goal"]
    assert first["plan"].splitlines()[1] == action_text(("unstack", "c", "b"))


# -- prompts ----------------------------------------------------------------------------------------------------


@needs_shared
def test_pool_prompt_has_the_examples_and_ends_with_the_plan_so_far():
    task = BlocksworldTask(POOL_V1, n_shots=4)
    pool = json.loads(POOL_V1.read_text())
    state = task.step(task.initial_state(PROBLEM), PLAN[0])
    prompt = task.prompt(state)
    shots = "\n".join("[STATEMENT]\nAs initial conditions I have that, " + ex["init"] + ".\nMy goal is to have that "
                      + ex["goal"] + ".\n\nMy plan is as follows:\n\n[PLAN]" + ex["plan"]
                      for ex in (pool["example_pool"][i] for i in state["shots"]))
    query = ("\n[STATEMENT]\nAs initial conditions I have that, " + facts_text(problem_facts(PROBLEM)[0])
             + ".\nMy goal is to have that the red block is on top of the blue block and the orange block is on top "
               "of the yellow block.\n\nMy plan is as follows:\n\n[PLAN]\n" + PLAN[0] + "\n")
    assert prompt == pool["intro"] + shots + query
    assert task.prompt(task.initial_state(PROBLEM)).endswith("[PLAN]\n")
    assert BlocksworldTask(POOL_V1).n_shots == 4 and BlocksworldTask(POOL_V1, n_shots=0).prompt(state).startswith(
        pool["intro"] + "[STATEMENT]")
    with pytest.raises(ValueError, match="n_shots"):
        BlocksworldTask(POOL_V1, n_shots=11)


def test_prompt_pool_files_are_checked(tmp_path):
    path = tmp_path / "pool.json"
    path.write_text(json.dumps({"intro": "rules\n\n", "example_pool": [{"init": "x", "goal": "y", "plan": "z"}]}))
    with pytest.raises(ValueError, match=re.escape(f"{path}: example_pool[0]")):
        load_prompt_pool(path)
    path.write_text("{")
    with pytest.raises(ValueError, match=re.escape(str(path))):
        load_prompt_pool(path)


def test_builtin_pool_is_solved_by_the_project():
    pool = default_pool()
    assert len(pool["examples"]) == 2 and BlocksworldTask().n_shots == 2
    prompt = BlocksworldTask().prompt(BlocksworldTask().initial_state(PROBLEM))
    for example in pool["examples"]:
        assert example["plan"].startswith("\n") and example["plan"].endswith("\n[PLAN END]\n")
        assert example["plan"] in prompt


@needs_shared
def test_builtin_examples_are_not_public_problems(public_problems):
    from srm_tasks.blocksworld.prompts import DEFAULT_EXAMPLES

    public = {canonical_key(p) for p in public_problems}
    assert not {canonical_key({"init": i, "goal": g}) for i, g in DEFAULT_EXAMPLES} & public


# -- the task in the search graph ----------------------------------------------------------------------------------


def test_task_protocol_and_json_states():
    task = BlocksworldTask()
    assert isinstance(task, Task) and task.name == "blocksworld"
    state = task.initial_state(PROBLEM)
    assert task.legal_actions(state) == ["unstack the blue block from on top of the orange block",
                                         "pick up the yellow block"]
    for action in PLAN:
        met = len(set(state["goal"]) & set(state["facts"])) / len(state["goal"])
        assert not task.is_terminal(state) and task.goal_progress(state) == met < 1
        state = json.loads(json.dumps(task.step(state, action.upper() + ".")))
    assert task.is_solved(state) and task.is_terminal(state) and task.goal_progress(state) == 1.0
    assert task.answer(state) == "\n".join(PLAN) and task.answer(task.initial_state(PROBLEM)) is None
    after = task.describe(task.step(task.initial_state(PROBLEM), PLAN[0]))
    assert after.startswith("Stacks, top to bottom, each block with its goal: ") and PLAN[0] not in after  # no plan
    prompt, good, bad = task.self_eval_query(task.initial_state(PROBLEM), PLAN[0])
    assert (good, bad) == ("good", None) and prompt.endswith(f"[ACTION]\n{PLAN[0]}\n[EVALUATION]\n")
    assert prompt.count("[EVALUATION]\ngood") == 3 and prompt.count("[EVALUATION]\nbad") == 2  # 5 demonstrations
    with pytest.raises(ValueError, match="cannot pick up the red block: it needs that the red block is clear"):
        task.step(task.initial_state(PROBLEM), "pick up the red block")
    with pytest.raises(ValueError, match="not a Blocksworld action"):
        task.step(task.initial_state(PROBLEM), "fly away")


def test_builtin_self_evaluation_demonstrations_are_labelled_by_the_optimal_distance():
    from srm_tasks.blocksworld import default_pool, parse_action
    from srm_tasks.blocksworld.english import BLOCK_OF
    from srm_tasks.blocksworld.world import apply, solve

    demos = default_pool()["self_eval"].split("[STATEMENT]\n")[1:-1]
    assert len(demos) == 5
    for demo in demos:
        state_text = demo.split("As initial conditions I have that, ")[1].split(".\n")[0]
        goal_text = demo.split("My goal is to have that ")[1].split(".\n")[0]
        action, label = demo.split("[ACTION]\n")[1].split("\n[EVALUATION]\n")
        facts = facts_from_text(state_text)
        goal = facts_from_text(goal_text)
        closer = len(solve(apply(facts, parse_action(action)), goal)) < len(solve(facts, goal))
        assert label.strip() == ("good" if closer else "bad"), demo


def facts_from_text(text: str) -> frozenset:
    """Facts from RAP-style English (the inverse of facts_text), for checking demonstrations."""
    import re

    from srm_tasks.blocksworld.english import BLOCK_OF

    facts = set()
    for part in re.split(r", | and ", text):
        names = [BLOCK_OF[c] for c in re.findall(r"the (\w+) block", part)]
        if part == "the hand is empty":
            facts.add(("handempty",))
        elif "is clear" in part:
            facts.add(("clear", *names))
        elif "on top of" in part:
            facts.add(("on", *names))
        elif "on the table" in part:
            facts.add(("ontable", *names))
        elif "holding" in part:
            facts.add(("holding", *names))
    return frozenset(facts)


def test_rap_pool_demonstrations_are_sampled_per_problem_with_the_seed():
    if not POOL_V1.is_file():
        pytest.skip(f"{POOL_V1} not found (../shared is absent in a user's clone)")
    task = BlocksworldTask(POOL_V1, seed=0)
    shots = task.initial_state(PROBLEM)["shots"]
    assert len(shots) == 4 and len(set(shots)) == 4 and shots == task.initial_state(PROBLEM)["shots"]
    assert shots != BlocksworldTask(POOL_V1, seed=1).initial_state(PROBLEM)["shots"] or \
        shots != BlocksworldTask(POOL_V1, seed=2).initial_state(PROBLEM)["shots"]
    prompt = task.prompt(task.initial_state(PROBLEM))
    pool = task.pool["examples"]
    assert all(pool[i]["init"] in prompt for i in shots) and sum(ex["init"] in prompt for ex in pool) == 4
    assert task.provenance()["prompt_pool"] == str(POOL_V1)


class DistanceOracle:
    """An SRM that knows the BFS distance: actions that bring the goal one step closer score high."""

    fingerprint = "bw-oracle-v1"

    def __init__(self, task: BlocksworldTask, problem: dict) -> None:
        self.task, self.problem = task, problem

    def score(self, state: str, actions: list[str]) -> list[float]:
        current = self._state_of(state)
        now = bfs_distance(current["facts"], current["goal"])
        return [6.0 if bfs_distance(self.task.step(current, a)["facts"], current["goal"]) < now else -6.0
                for a in actions]

    def _state_of(self, text: str) -> dict:
        """The reachable state the SRM's text describes (the text shows the arrangement, not the plan)."""
        frontier, seen = [self.task.initial_state(self.problem)], set()
        while frontier:
            state = frontier.pop()
            if self.task.describe(state) == text:
                return state
            key = tuple(sorted(state["facts"]))
            if key not in seen:
                seen.add(key)
                frontier += [self.task.step(state, a) for a in self.task.legal_actions(state)]
        raise AssertionError(f"no reachable state is described as {text!r}")


@pytest.fixture()
def short_pool(tmp_path) -> Path:
    """A pool short enough for the tiny test model's 512 positions."""
    path = tmp_path / "short_pool.json"
    path.write_text(json.dumps({"intro": "Move blocks.\n\n", "example_pool": []}))
    return path


@pytest.mark.parametrize("strategy", ["bfs", "mcts"])
def test_search_solves_with_an_oracle_srm(tiny_generator, short_pool, strategy):
    task = BlocksworldTask(short_pool, n_shots=0)
    graph = build_tree_search(task, tiny_generator, DistanceOracle(task, PROBLEM), strategy=strategy, k=3,
                              max_depth=8, mcts_iters=20, mode="threshold")
    result = graph.invoke({"problem": PROBLEM})["result"]
    assert result["solved"], result
    plan = result["answer"].split("\n")
    assert validate_plan(PROBLEM, plan) == (True, True, None) and len(plan) == len(PLAN)


def test_free_text_actions_that_fail_are_invalid_steps(tiny_generator, short_pool):
    from srm_agent.search.tree import nodes_of

    task = BlocksworldTask(short_pool, n_shots=0)
    graph = build_tree_search(task, tiny_generator, evaluator="prior", proposals="sample", k=3, max_depth=2,
                              max_expansions=2, max_new_tokens=8, goal_test="end")
    nodes = nodes_of(graph.invoke({"problem": PROBLEM})["tree"])
    invalid = [n for n in nodes if n["invalid"]]
    assert invalid and all("Blocksworld action" in n["invalid"] or "cannot" in n["invalid"] for n in invalid)
