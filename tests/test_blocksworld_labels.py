"""Blocksworld process labels agree with the simulator; evaluation problems stay out of training."""

from __future__ import annotations

import pytest

from srm_tasks.blocksworld import BlocksworldTask, canonical_key, generate_problems
from srm_tasks.blocksworld.problems import problem_facts
from srm_tasks.blocksworld.world import apply, legal_ops, parse_atom, solve
from tests.conftest import SHARED
from trainer.blocksworld_labels import exact_label, label_records, training_problems, weak_label

PROBLEMS = generate_problems(6, blocks=(4, 5), seed=3)


def test_weak_labels_follow_the_goal_facts_an_action_makes_or_breaks():
    records = label_records(PROBLEMS, walks=2, walk_length=4, seed=1, progress=False)
    assert {0.5, 1.0} <= {r["label"] for r in records}
    for problem in PROBLEMS:
        init, goal = problem_facts(problem)
        for op in legal_ops(init):
            after = apply(init, op)
            made, broken = (after - init) & goal, (init - after) & goal
            assert weak_label(init, op, goal) == (1.0 if made else 0.0 if broken else 0.5)
        stack = next(op for op in solve(init, goal) if op[0] == "stack")
        facts = init
        for op in solve(init, goal):
            facts = apply(facts, op)
            if op == stack:
                break
        assert weak_label(facts, ("unstack", *stack[1:]), goal) == 0.0  # undoing a met goal fact


def test_records_render_states_as_the_graph_does():
    task = BlocksworldTask()
    records = label_records(PROBLEMS[:1], walks=1, walk_length=1, progress=False)
    root = task.initial_state(PROBLEMS[0])
    assert {r["context"] for r in records} == {task.describe(root)}
    assert sorted(r["step"] for r in records) == sorted(task.legal_actions(root))
    assert {r["group"] for r in records} == {canonical_key(PROBLEMS[0])}


def test_exact_labels_mark_the_steps_of_an_optimal_plan():
    for problem in PROBLEMS:
        facts, goal = problem_facts(problem)
        for op in solve(facts, goal):
            assert exact_label(facts, op, goal) == 1.0
            facts = apply(facts, op)
    facts, goal = problem_facts(PROBLEMS[0])
    assert 0.0 in {exact_label(facts, op, goal) for op in legal_ops(facts)} | {
        exact_label(apply(facts, op), back, goal) for op in legal_ops(facts) for back in legal_ops(apply(facts, op))}


def test_training_problems_avoid_the_excluded_ones():
    public = generate_problems(30, blocks=(3, 4), seed=0)
    excluded = {canonical_key(p) for p in public}
    kept = training_problems(20, (3, 4), seed=0, exclude=excluded)
    assert len(kept) == 20 and not {canonical_key(p) for p in kept} & excluded


@pytest.mark.skipif(not (SHARED / "data" / "blocksworld").is_dir(), reason="../shared (Blocksworld data) is absent")
def test_real_split_instances_are_excluded():
    from trainer.blocksworld_labels import excluded_keys

    split = SHARED / "data/blocksworld/llm-reasoners/data/split_v1/split_v1_step_2_data.json"
    keys = excluded_keys([split])
    assert len(keys) > 10
    kept = training_problems(30, (4, 5), seed=0, exclude=keys)
    assert not {canonical_key(p) for p in kept} & keys
    assert all(parse_atom(f) for p in kept for f in p["init"])
