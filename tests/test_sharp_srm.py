"""The parts of a sharp Blocksworld SRM: exact distances, exact labels, the state it sees, compact
checkpoints and the ranking-quality measure."""

from __future__ import annotations

import json
import random

import pytest
import torch

from srm_agent import CheckpointError, SpeculativeRewardModel
from srm_tasks.blocksworld import BlocksworldTask, generate_problems
from srm_tasks.blocksworld.distances import distance, optimal_actions, optimal_plan
from srm_tasks.blocksworld.problems import fact_strings, problem_facts
from srm_tasks.blocksworld.world import apply, legal_ops, solve


def test_graph_distances_are_the_breadth_first_optimum():
    rng = random.Random(0)
    for problem in generate_problems(12, blocks=(3, 5), seed=4):
        facts, goal = problem_facts(problem)
        for _ in range(4):
            d = distance(facts, goal)
            assert d == len(solve(facts, goal)) == len(optimal_plan(facts, goal))
            good = optimal_actions(facts, goal)
            assert good and all(distance(apply(facts, op), goal) == d - 1 for op in good)
            assert all(distance(apply(facts, op), goal) >= d for op in legal_ops(facts) if op not in good)
            facts = apply(facts, rng.choice(legal_ops(facts)))


def test_the_srm_sees_each_goal_beside_its_block_and_the_arrangement_not_the_plan():
    task = BlocksworldTask()
    problem = generate_problems(1, blocks=(4, 4), seed=2)[0]
    state = task.initial_state(problem)
    moved = task.step(state, task.legal_actions(state)[0])
    text = task.describe(moved)
    assert text.startswith("Stacks, top to bottom, each block with its goal: ")
    assert task.legal_actions(state)[0] not in text  # the plan so far is not shown
    assert text.endswith("the hand is empty.") or "the hand is holding the " in text
    assert text.count(" on the table") == sum("ontable" in f for f in moved["facts"])
    assert text.count("(goal") == len(moved["goal"])  # every goal fact, none cut off


def test_the_goal_beside_a_block_says_where_it_should_stand_and_whether_it_does():
    task = BlocksworldTask()
    problem = {"init": ["(clear a)", "(clear c)", "(handempty)", "(on a b)", "(ontable b)", "(ontable c)"],
               "goal": ["(clear c)", "(on a b)", "(on c a)"]}
    state = task.initial_state(problem)
    assert task.describe(state) == (
        "Stacks, top to bottom, each block with its goal: the red block (goal met: on top of the blue block) on the "
        "blue block on the table; the orange block (goal: on top of the red block) on the table; the hand is empty."
        " The goal also has that the orange block is clear.")
    held = task.step(state, "pick up the orange block")
    assert "the hand is holding the orange block (goal: on top of the red block)." in task.describe(held)
    done = task.step(held, "stack the orange block on top of the red block")
    assert task.describe(done).count("goal met") == 2 and task.is_solved(done)


def test_exact_labels_follow_the_distance_and_optimal_walks_reach_the_goal():
    from trainer.blocksworld_labels import label_records

    problems = generate_problems(6, blocks=(4, 5), seed=9)
    records = label_records(problems, labeller="exact", walks=2, walk_length=12, optimal_share=1.0,
                            progress=False)
    assert {r["label"] for r in records} == {0.0, 1.0}
    by_context: dict[str, list[float]] = {}
    for r in records:
        by_context.setdefault(r["context"], []).append(r["label"])
    assert all(1.0 in labels for labels in by_context.values())  # some action always lowers the distance
    # a fully optimal walk visits exactly the optimal plan's states (the goal state has no records)
    assert len(by_context) >= sum(p["optimal_length"] for p in problems) // 2
    with pytest.raises(ValueError, match="optimal_share"):
        label_records(problems, labeller="exact", optimal_share=1.5, progress=False)


def test_ranking_quality_scores_an_oracle_one_and_its_reverse_zero():
    from trainer.evaluate_srm import held_out_states, ranking_quality

    states = held_out_states(20, blocks=(4, 5), walk_length=4, seed=3, exclude=set())
    oracle = [[1.0 if good else 0.0 for good in st["optimal"]] for st in states]
    best = ranking_quality(oracle, states)
    assert best["top1"] == best["pair_acc"] == best["auroc"] == 1.0
    assert 0 < best["random"] < 1 and sum(v["states"] for k, v in best["top1_by"].items()
                                          if k.startswith("distance")) == 20
    assert best["same_verb_pair_acc"] == 1.0 and best["same_verb_pairs"] > 0
    worst = ranking_quality([[-x for x in row] for row in oracle], states)
    assert worst["top1"] == worst["pair_acc"] == worst["same_verb_pair_acc"] == worst["auroc"] == 0.0
    # a constant score ties every action: top-1 is then the share of optimal actions, what a random pick scores
    flat = ranking_quality([[0.0] * len(st["actions"]) for st in states], states)
    assert flat["top1"] == pytest.approx(flat["random"]) and flat["pair_acc"] == 0.5


def test_verb_only_control_ranks_verbs_and_cannot_rank_within_one():
    from trainer.evaluate_srm import held_out_states, ranking_quality, verb_only_scores

    states = held_out_states(60, blocks=(4, 5), walk_length=6, seed=4, exclude=set())
    scores = verb_only_scores(states)
    for st, row in zip(states, scores):  # one score per verb
        assert len({(v, x) for v, x in zip(st["verbs"], row)}) == len(set(st["verbs"]))
    quality = ranking_quality(scores, states)
    assert quality["same_verb_pair_acc"] == 0.5
    assert quality["top1"] > quality["random"] and quality["pair_acc"] > 0.5


CARD = {"title": "t", "base": "base", "objective": "pairwise", "steps": 1, "epochs_run": 1, "stopped_early": False,
        "wall_s": 1.0, "data": [], "config": {}, "history": [], "best": None, "command": "test",
        "split": {"seed": 0, "dev_fraction": 0.1, "train_groups": 1, "train_pairs": 1, "train_records": 1,
                  "train_pairs_available": 1, "train_records_available": 1, "dev_groups": 0, "dev_pairs": 0,
                  "dev_records": 0}}


def test_compact_checkpoint_holds_only_what_changed_and_scores_the_same(tiny_srm, tmp_path):
    from safetensors.torch import load_file

    from tests.conftest import make_tiny_srm_model
    from trainer.export import export_checkpoint

    base = tmp_path / "base"
    SpeculativeRewardModel(make_tiny_srm_model(), tiny_srm.tokenizer, device="cpu").save_pretrained(base)
    model = tiny_srm.model  # the same seed as the base: only what is changed below differs
    with torch.no_grad():
        model.bert.encoder.layer[1].output.dense.bias.add_(0.25)
        model.classifier.weight.mul_(3.0)
    out = export_checkpoint(model, tiny_srm.tokenizer, tmp_path / "delta", card=CARD, metrics={},
                            window=48, delta_base=str(base))
    stored = load_file(out / "model.safetensors")
    assert set(stored) == {"bert.encoder.layer.1.output.dense.bias", "classifier.weight", "classifier.bias"}
    assert oct((out / "model.safetensors").stat().st_mode & 0o777) == "0o644"
    again = SpeculativeRewardModel.from_pretrained(out, device="cpu")
    state, actions = "Goal: the red block on the blue block.", ["pick up the red block", "put down the red block"]
    assert again.max_length == 48
    assert again.score(state, actions) == pytest.approx(tiny_srm.score(state, actions), abs=1e-5)
    config = json.loads((out / "config.json").read_text())
    (out / "config.json").write_text(json.dumps({**config, "srm_base": str(tmp_path / "nowhere")}))
    with pytest.raises(CheckpointError, match="srm_base"):
        SpeculativeRewardModel.from_pretrained(out, device="cpu")


def test_batches_hold_items_of_similar_length_in_a_seeded_order():
    from trainer.data import Pair
    from trainer.loop import epoch_order

    items = [Pair("s" * n, "a", "b", 1.0, "g", "x") for n in range(1, 200)]
    order = epoch_order(items, 8, seed=1, bucket=True)
    assert sorted(order) == list(range(199))
    spans = [max(order[i:i + 8]) - min(order[i:i + 8]) for i in range(0, 192, 8)]
    assert max(spans) < 40  # each batch holds items of similar length
    assert epoch_order(items, 8, seed=1, bucket=True) == order != epoch_order(items, 8, seed=2, bucket=True)
    assert epoch_order(items, 8, seed=1, bucket=False) != order


def test_state_batches_keep_each_states_pairs_together_and_encode_each_step_once(tiny_srm):
    from trainer.data import Pair, subsample_states
    from trainer.loop import _Collate, encode, epoch_order, objective

    rng = random.Random(0)
    states = [(f"state {k} " + "x" * rng.randint(1, 60), rng.randint(1, 3)) for k in range(40)]
    pairs = [Pair(context, f"good {i}", f"bad {j}", 1.0, f"g{k % 7}")
             for k, (context, bad) in enumerate(states) for i in range(2) for j in range(bad)]
    order = epoch_order(pairs, 8, seed=3, bucket=True, by_state=True)
    assert sorted(order) == list(range(len(pairs)))
    seen = [pairs[i].context for i in order]
    for context, _ in states:
        where = [i for i, c in enumerate(seen) if c == context]
        assert where == list(range(where[0], where[0] + len(where)))  # a state's pairs are consecutive
    assert epoch_order(pairs, 8, seed=3, bucket=True, by_state=True) == order
    assert epoch_order(pairs, 8, seed=4, bucket=True, by_state=True) != order

    drawn = subsample_states(pairs, 25, seed=1)
    assert len(drawn) == 25 and drawn != pairs[:25]
    counts = {c: sum(p.context == c for p in pairs) for c in {p.context for p in drawn}}
    assert sum(sum(p.context == c for p in drawn) < n for c, n in counts.items()) <= 1  # only the last is cut

    batch = [pairs[i] for i in order[:8]]
    tok, model = tiny_srm.tokenizer, tiny_srm.model.eval()
    enc = _Collate(tok, "pairwise", 64)(batch)
    distinct = {(p.context, s) for p in batch for s in (p.positive, p.negative)}
    assert enc["input_ids"].shape[0] == len(distinct) < 2 * len(batch)
    targets = enc.pop("targets")
    with torch.no_grad():
        shared = objective(model(**enc).logits[:, 0], "pairwise", targets)
        naive = encode(tok, [p.context for p in batch] * 2,
                       [p.positive for p in batch] + [p.negative for p in batch], 64)
        plain = objective(model(**naive).logits[:, 0], "pairwise")
    assert float(shared) == pytest.approx(float(plain), abs=1e-5)


def test_verb_siblings_pair_only_actions_of_one_verb():
    from trainer.blocksworld_labels import label_records
    from trainer.data import StepRecord, pairs_from_rewards

    problems = generate_problems(4, blocks=(4, 5), seed=9)
    kwargs = dict(labeller="exact", walks=2, walk_length=8, optimal_share=0.5, progress=False)
    by_state = label_records(problems, siblings="state", **kwargs)
    by_verb = label_records(problems, siblings="verb", **kwargs)
    assert [r["step"] for r in by_state] == [r["step"] for r in by_verb]

    def pairs(records):
        return pairs_from_rewards([StepRecord(r["context"], r["step"], r["label"], r["group"], r["source"])
                                   for r in records])

    verb = pairs(by_verb)
    assert verb and all(p.positive.split(" ")[0] == p.negative.split(" ")[0] for p in verb)
    assert len(verb) < len(pairs(by_state))


def test_max_distance_labels_only_the_end_of_plans():
    from trainer.blocksworld_labels import label_records

    problems = generate_problems(4, blocks=(4, 4), seed=9)
    kwargs = dict(labeller="exact", walks=2, walk_length=12, optimal_share=0.7, progress=False)
    every, near = label_records(problems, **kwargs), label_records(problems, max_distance=2, **kwargs)
    task = BlocksworldTask()
    distance_of: dict[str, int] = {}  # every state reachable in these 4-block problems, by its SRM text
    for problem in problems:
        start = task.initial_state(problem)
        init, goal = problem_facts(problem)
        frontier = [init]
        while frontier:
            facts = frontier.pop()
            text = task.describe({**start, "facts": fact_strings(facts)})
            if text not in distance_of:
                distance_of[text] = distance(facts, goal)
                frontier.extend(apply(facts, op) for op in legal_ops(facts))
    assert {r["context"] for r in near} and {distance_of[r["context"]] for r in near} <= {1, 2}
    assert [r for r in every if distance_of[r["context"]] <= 2] == near  # the same walks, only the far states cut
    assert any(distance_of[r["context"]] > 2 for r in every)
