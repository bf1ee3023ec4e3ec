"""GSM8K RAP as llm-reasoners runs it, and its SRM twin: prompts from the pool's files, the "useful?" fast reward,
the sampled answers' early stop, the reward, the vote, and twins that differ only in who judges."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from typing import Any

import numpy as np
import pytest

from evals.methods import METHODS, SearchSettings, search_kwargs
from srm_agent.generators import Generation, Usage
from srm_agent.rule import Candidate
from srm_agent.search import build_tree_search
from srm_agent.search.engine import new_node
from srm_agent.search.evaluators.base import EvalContext
from srm_agent.search.evaluators.self_eval import SelfEvaluator
from srm_agent.search.strategies.mcts import MCTS
from srm_agent.search.tree import Tree, nodes_of
from srm_tasks import get_spec
from srm_tasks.gsm8k.cot import GSM8KCoTTask
from srm_tasks.gsm8k.rap import GSM8KRAPTask, SubQuestionProposer, overall_question
from srm_tasks.gsm8k.rap_prompts import load_rap_prompts
from srm_tasks.gsm8k.rap_world import SubAnswerWorld
from tests.conftest import SHARED, make_tiny_lm

FOLDER = SHARED / "data" / "gsm8k" / "llm-reasoners-rap"
needs_prompts = pytest.mark.skipif(not (FOLDER / "prompt_pool.json").is_file(),
                                   reason=f"llm-reasoners' GSM8K prompts are not at {FOLDER}")
PROBLEM = {"id": "p0", "question": "Tom has 3 bags with 4 apples each. He eats 2 apples. How many apples are left?",
           "answer": "10"}
SPEC = get_spec("gsm8k")


# -- prompts --------------------------------------------------------------------------------------------------

@needs_prompts
def test_prompts_are_built_from_the_pool_files_with_four_interactive_examples():
    prompts = load_rap_prompts(FOLDER)
    pool = json.loads((FOLDER / "prompt_pool.json").read_text())
    useful = json.loads((FOLDER / "useful_examples.json").read_text())
    assert prompts.examples == tuple(pool["interactive_examples"]) and len(prompts.examples) == 10
    task = GSM8KRAPTask(prompts)
    state = task.initial_state(PROBLEM)
    assert len(state["shots"]) == len(set(state["shots"])) == 4 and state["gold"] == "10"
    assert task.initial_state(PROBLEM)["shots"] == state["shots"]  # fixed by the seed and the question
    shots = "".join(pool["interactive_examples"][i].format(idx=j + 1) + "\n\n" for j, i in enumerate(state["shots"]))
    header = pool["instruction"] + "\n\n" + shots + f"Question 5: {PROBLEM['question']}\n"
    assert task.prompt(state) == header + "Question 5.1:"
    one = task.answered(state, "How many apples are in the bags?", "3 * 4 = 12. The answer is 12.")
    so_far = header + "Question 5.1: How many apples are in the bags?\nAnswer 5.1: 3 * 4 = 12. The answer is 12.\n"
    assert task.prompt(one) == so_far + "Question 5.2:"
    assert task.answer_prompt(one, "How many are eaten?") == so_far + "Question 5.2: How many are eaten?\nAnswer 5.2:"
    for n in range(1, 5):
        assert task.prompt(state).count(f"Question {n}: ") == 1
    deep = {**one, "subs": one["subs"] * 4}  # four answered: the fifth is the last the depth allows
    assert task.prompt(deep).endswith("Question 5.5: Now we can answer the question:")
    query, good, bad = task.self_eval_query(one, "How many are eaten?")
    assert query == (useful["input"] + "Question 5: " + PROBLEM["question"] + "\nQuestion 5.1: How many apples are in "
                     "the bags?\nNew question 5.2: How many are eaten?\nIs the new question useful?")
    assert (good, bad) == (" Yes", " No")


def test_built_in_prompts_have_the_same_format():
    task = GSM8KRAPTask(load_rap_prompts("built-in"))
    state = task.initial_state(PROBLEM)
    assert len(state["shots"]) == 4 and task.prompt(state).endswith(f"Question 5: {PROBLEM['question']}\nQuestion 5.1:")
    assert task.self_eval_query(state, "Q?")[0].endswith("New question 3.1: Q?\nIs the new question useful?")
    with pytest.raises(ValueError, match="not a folder"):
        load_rap_prompts("/nowhere")


def test_sub_questions_are_kept_as_rap_keeps_them():
    task = GSM8KRAPTask(load_rap_prompts("built-in"), depth=2)
    state = task.initial_state(PROBLEM)
    final = "Now we can answer the question: How many apples are left?"
    assert overall_question(PROBLEM["question"]) == "How many apples are left?"
    assert task.sub_question(state, "  How many   apples are in the bags? ") == "How many apples are in the bags?"
    assert task.sub_question(state, "Now we can answer the question: what is left") == final
    assert task.sub_question(state, "how many apples are left?") == final
    deep = task.answered(state, "How many apples are in the bags?", "The answer is 12.")
    assert task.sub_question(deep, "anything at all") == final  # at the depth limit: led into the final question
    done = task.answered(deep, final, "12 - 2 = 10. The answer is 10.")
    assert task.is_terminal(done) and not task.is_terminal(deep)
    assert task.answer(done) == "10" and task.is_solved(done)
    with pytest.raises(ValueError, match="world model"):
        task.step(state, "How many?")


@needs_prompts
def test_cot_uses_four_examples_of_the_pool_and_decodes_greedily():
    kwargs = SPEC.configure_method(None, search_kwargs("cot", SearchSettings(), 5), {"prompts": str(FOLDER)})
    task = kwargs["task"]
    assert isinstance(task, GSM8KCoTTask) and kwargs["temperature"] == 0.0 and kwargs["k"] == 1
    cot = json.loads((FOLDER / "cot.json").read_text())
    state = task.initial_state(PROBLEM)
    assert task.prompt(state) == "".join(cot["cot_pool"][i] for i in state["shots"]) + \
        f"Q: {PROBLEM['question']}\nA:"
    assert len(set(state["shots"])) == 4
    done = task.step(state, " He has 3 * 4 = 12 and eats 2, so 10 are left. The answer is 10")
    assert task.is_terminal(done) and task.answer(done) == "10"
    assert SPEC.configure_method(None, {"k": 1}, {"prompts": "built-in"}) == {"k": 1}  # no pool: the step task


# -- the "useful?" fast reward ----------------------------------------------------------------------------------

@pytest.fixture()
def long_generator(tiny_lm_tokenizer):
    from srm_agent.generators import TransformersGenerator

    return TransformersGenerator(make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=4096), tiny_lm_tokenizer,
                                 device="cpu")


def test_useful_reward_is_p_yes_against_p_no_in_one_call_per_candidate(long_generator):
    task = GSM8KRAPTask(load_rap_prompts("built-in"))
    state = task.initial_state(PROBLEM)
    node = {"id": 0, "task_state": state, "state": task.describe(state), "depth": 0}
    candidates = [{"text": t, "logprob": -2.0, "num_tokens": 3} for t in ("How many apples?", "What is red?")]
    out = SelfEvaluator(intuition="none").evaluate(EvalContext(task, node, long_generator, None, 0), candidates)
    assert out.usage.calls == 2
    for decision in out.verdict["decisions"]:
        query, good, bad = task.self_eval_query(state, decision["text"])
        yes, no = (c.logprob for c in long_generator.score_choices(query, [good, bad]))
        p_yes = math.exp(yes) / (math.exp(yes) + math.exp(no))
        assert decision["reward"] == pytest.approx(math.log(p_yes)) and decision["intuition"] == 0.0
        assert 0 < math.exp(decision["reward"]) < 1


# -- the world model's sampled answers ----------------------------------------------------------------------------

class Scripted:
    """A generator that returns the given texts, call after call, and records each call."""

    def __init__(self, *calls: list[str]) -> None:
        self.script, self.calls = list(calls), []

    def propose(self, prompt, k, *, temperature=0.8, max_new_tokens=64, stop=None, seed=None):
        self.calls.append({"k": k, "temperature": temperature, "stop": stop})
        texts = self.script.pop(0)
        assert len(texts) == k
        return Generation([Candidate(t, -1.0, 4) for t in texts], Usage(1, 100, 4 * k))


@pytest.mark.parametrize("calls, answer, confidence", [
    ([["The answer is 5.", "So 5. The answer is 5."]], "The answer is 5.", 1.0),  # agree at once
    ([["The answer is 5.", "The answer is 6."], ["The answer is 6.", "The answer is 7."]], "The answer is 6.", 0.5),
    ([["The answer is 5.", "The answer is 6."], ["The answer is 6.", "The answer is 5."],  # 2-2: a tie goes on
      ["The answer is 5.", "The answer is 8."]], "The answer is 5.", 0.5),
    ([[f"The answer is {i}.", f"The answer is {i + 10}."] for i in range(4)], "The answer is 0.", 1 / 8),
])
def test_answers_are_sampled_two_at_a_time_until_a_majority(calls, answer, confidence):
    task = GSM8KRAPTask(load_rap_prompts("built-in"))
    generator = Scripted(*calls)
    step = SubAnswerWorld(generator).step(task, task.initial_state(PROBLEM), "How many?")
    assert len(generator.calls) == len(calls) and not generator.script  # stopped exactly where the majority was
    assert all(c == {"k": 2, "temperature": 0.8, "stop": ["\n"]} for c in generator.calls)
    assert step.aux == {"confidence": confidence} and step.state["subs"][-1] == {"q": "How many?", "a": answer}
    assert step.usage.calls == len(calls)


def test_the_twins_world_answers_once_greedily_without_a_confidence():
    task = GSM8KRAPTask(load_rap_prompts("built-in"))
    generator = Scripted(["The answer is 5."])
    step = SubAnswerWorld(generator, samples=1, per_call=1, temperature=0.0, report_confidence=False).step(
        task, task.initial_state(PROBLEM), "How many?")
    assert generator.calls == [{"k": 1, "temperature": 0.0, "stop": ["\n"]}] and step.aux == {}


# -- reward, values, vote -----------------------------------------------------------------------------------------

def test_rap_gsm8k_reward_is_r_useful_and_confidence_to_the_half():
    rap = MCTS(reward_mix="product", confidence_default=0.8, cum_reward="mean", calc_q="max")
    assert rap.mix(math.log(0.6), 0.5) == pytest.approx(0.6 ** 0.5 * 0.5 ** 0.5)
    assert rap.prior({"fast_reward": math.log(0.6)}) == pytest.approx(0.6 ** 0.5 * 0.8 ** 0.5)  # RAP's fast reward
    blocksworld = MCTS()
    assert blocksworld.mix(-3.0, 100.0) == pytest.approx(0.5 * -3.0 + 0.5 * 100.0)
    assert blocksworld.prior({"fast_reward": -3.0}) == -3.0
    with pytest.raises(ValueError, match="reward_mix"):
        MCTS(reward_mix="max")


def chain_tree(rewards: list[list[float]]) -> Tree:
    """A root with one chain per list of rewards, every node stepped."""
    tree = Tree()
    tree.add({**new_node(None, None, None), "materialized": True})
    for chain in rewards:
        parent = tree[0]
        for reward in chain:
            node_id = tree.add({**new_node(parent, "a", {"reward": reward, "prior": 0.0, "accepted": True}),
                                "materialized": True, "reward": reward})
            tree.update(parent["id"], children=[*parent["children"], node_id], expanded=True)
            parent = tree[node_id]
    return tree


def test_values_back_up_the_mean_to_the_end_and_q_is_their_max():
    tree = chain_tree([[0.2, 0.6]])
    rap = MCTS(reward_mix="product", cum_reward="mean", calc_q="max")
    rap.backpropagate(tree, [0, 1, 2])
    assert [tree[i]["value_sum"] for i in (2, 1)] == pytest.approx([0.6, 0.4])
    tree.update(2, reward=0.0)
    rap.backpropagate(tree, [0, 1, 2])
    assert rap.q(tree[1]) == pytest.approx(0.4) and rap.q(tree[2]) == pytest.approx(0.6)  # the max, not the mean
    assert MCTS().q(tree[2]) == pytest.approx(0.3)


class VoteContext:
    """Terminal nodes state the answers given; nodes at depth 2 are leaves."""

    def __init__(self, answers: dict[int, str]) -> None:
        self.answers = answers

    def is_leaf(self, node):
        return node["depth"] >= 2

    def answer(self, node):
        return self.answers.get(node["id"])


def test_the_vote_weighs_every_node_above_an_answer_and_can_overrule_the_best_path():
    # root -> 1 (0.5) -> 2 (0.9, "5"); root -> 3 (0.1) -> 4 (0.2, "7"); root -> 5 (0.9) -> 6 (0.3, "7")
    tree = chain_tree([[0.5, 0.9], [0.1, 0.2], [0.9, 0.3]])
    for terminal in (2, 4, 6):
        tree.update(terminal, terminal=True)
    ctx = VoteContext({2: "5", 4: "7", 6: "7"})
    assert MCTS(cum_reward="mean").result(tree, ctx) == 2  # the best path states 5 (mean 0.7)
    # "5": 0.9 + 0.5 = 1.4; "7": 0.2 + 0.1 + 0.3 + 0.9 = 1.5: the tree votes 7, at its best-rewarded terminal
    assert MCTS(cum_reward="mean", output="vote").result(tree, ctx) == 6


# -- the searches, and the twins ----------------------------------------------------------------------------------

class FakeModel:
    """Sub-questions and answers that depend on the seed, and a fixed "useful?" answer: a generator for twins."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    def propose(self, prompt, k, *, temperature=0.8, max_new_tokens=64, stop=None, seed=None):
        answering = prompt.rstrip().rsplit("\n", 1)[-1].startswith("Answer")
        self.calls.append("answer" if answering else "propose")
        rng = np.random.default_rng(seed)
        if answering:
            texts = [f"So it is {n}. The answer is {n}." for n in rng.integers(1, 4, size=k)]
        else:
            texts = [f"How many apples are in bag {n}?" for n in rng.integers(1, 6, size=k)]
        return Generation([Candidate(t, -1.0 - i, 6) for i, t in enumerate(texts)], Usage(1, len(prompt) // 4, 6 * k))

    def score_choices(self, prompt, choices):
        logps = [math.log(0.6), math.log(0.2)]
        return Generation([Candidate(c, logps[i % 2], 1) for i, c in enumerate(choices)], Usage(1, len(prompt) // 4))


class Flat:
    fingerprint = "flat"

    def score(self, state, actions):
        return [0.0] * len(actions)


def method_search(method: str, generator, srm=None, iterations: int = 3):
    settings = SearchSettings(k=3, mcts_iters=iterations, proposals="sample")
    kwargs = SPEC.configure_method(METHODS[method].family, search_kwargs(method, settings, 5),
                                   {"prompts": "built-in", "seed": 0, "k": settings.k})
    world = kwargs.pop("world")(generator)
    return build_tree_search(kwargs.pop("task"), generator, srm, world=world, **kwargs), kwargs, world


def test_rap_mcts_on_gsm8k_runs_llm_reasoners_search():
    generator = FakeModel()
    graph, kwargs, world = method_search("rap-mcts", generator)
    final = graph.invoke({"problem": PROBLEM})
    result, nodes = final["result"], nodes_of(final["tree"])
    assert final["tree"]["meta"]["iteration"] == 3 and result["failure"] is None
    usage = result["usage"]
    assert usage["proposal"]["calls"] == usage["expansions"] == generator.calls.count("propose")
    assert usage["world_model"]["calls"] == generator.calls.count("answer") > 0
    assert usage["evaluation"]["calls"] == sum(1 for n in nodes if n["decision"])  # one "useful?" call each
    assert isinstance(world, SubAnswerWorld) and world.samples == 8 and world.per_call == 2
    visited = [n for n in nodes if n["parent"] is not None and n["materialized"]]
    assert visited
    for node in visited:
        r_useful = math.exp(node["decision"]["self_eval"])
        assert r_useful == pytest.approx(0.75)
        assert node["reward"] == pytest.approx(r_useful ** 0.5 * node["aux"]["confidence"] ** 0.5)
    assert max(n["depth"] for n in nodes) <= 5
    assert all(n["terminal"] for n in nodes if n["depth"] == 5 and n["materialized"])
    assert result["answer"] in {"1", "2", "3"}  # the vote's answer, stated by a terminal node


def test_srm_mcts_differs_from_rap_mcts_only_in_who_judges():
    ours, ours_kwargs, ours_world = method_search("srm-mcts", FakeModel(), Flat())
    theirs, theirs_kwargs, theirs_world = method_search("rap-mcts", FakeModel())
    evaluator_keys = {"evaluator", "evaluator_options", "alpha", "mode", "ratio", "consistency"}
    assert {k: v for k, v in ours_kwargs.items() if k not in evaluator_keys} == \
        {k: v for k, v in theirs_kwargs.items() if k not in evaluator_keys}  # same proposals, strategy and budgets
    assert ours_kwargs["evaluator"] == "srm" and theirs_kwargs["evaluator"] == "self_eval"
    assert replace(ours_world, generator=theirs_world.generator, samples=8, per_call=2, temperature=0.8,
                   report_confidence=True) == theirs_world  # the world only answers more often, and says how sure
    a, b = ours.invoke({"problem": PROBLEM}), theirs.invoke({"problem": PROBLEM})

    def root_candidates(final):
        return [(n["action"], n["decision"]["logprob"]) for n in nodes_of(final["tree"]) if n["parent"] == 0]

    assert root_candidates(a) == root_candidates(b)
    for final in (a, b):
        usage = final["result"]["usage"]
        assert usage["proposal"]["calls"] == usage["expansions"] and final["tree"]["meta"]["iteration"] == 3
    usage = a["result"]["usage"]
    visited = sum(1 for n in nodes_of(a["tree"]) if n["parent"] is not None and n["materialized"])
    assert usage["evaluation"]["calls"] == 0 and usage["world_model"]["calls"] == visited  # one greedy answer each
    assert b["result"]["usage"]["evaluation"]["calls"] > 0


def test_the_proposer_makes_one_greedy_call_at_the_depth_limit():
    task = GSM8KRAPTask(load_rap_prompts("built-in"), depth=1)
    generator = Scripted(["whatever it writes"])
    proposal = SubQuestionProposer(k=4).propose(task, task.initial_state(PROBLEM), generator, node_id=0, seed=0)
    assert generator.calls == [{"k": 1, "temperature": 0.0, "stop": ["\n"]}]
    assert [c["text"] for c in proposal.candidates] == ["Now we can answer the question: How many apples are left?"]


# -- end to end ---------------------------------------------------------------------------------------------------

def test_evals_run_gsm8k_cot_rap_and_srm_mcts(tmp_path, tiny_lm_tokenizer, tiny_srm, monkeypatch):
    from evals.run import main

    monkeypatch.delenv("REDIS_URL", raising=False)
    lm = tmp_path / "tiny-lm"
    make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=4096).save_pretrained(lm)
    tiny_lm_tokenizer.save_pretrained(lm)
    data = tmp_path / "one.jsonl"
    data.write_text(json.dumps({"question": PROBLEM["question"], "answer": "12 - 2 = 10\n#### 10"}) + "\n")
    out = tmp_path / "run"
    code = main(["--bench", "gsm8k", "--data", str(data), "--methods", "cot,rap-mcts,srm-mcts", "--limit", "1",
                 "--prompts", "built-in", "--k", "2", "--mcts-iters", "2", "--out", str(out), "--generator", str(lm),
                 "--srm", str(tiny_srm.save_pretrained(tmp_path / "tiny-srm")), "--device", "cpu"])
    assert code == 0
    records = {r["method"]: r for r in map(json.loads, (out / "results.jsonl").read_text().splitlines())}
    assert set(records) == {"cot", "rap-mcts", "srm-mcts"} and all(r["failure"] is None for r in records.values())
    rap, srm = records["rap-mcts"]["usage"], records["srm-mcts"]["usage"]
    assert rap["evaluation"]["calls"] > 0 and rap["world_model"]["calls"] > 0 and rap["proposal"]["calls"] > 0
    assert srm["evaluation"]["calls"] == 0 and srm["srm_calls"] > 0 and srm["world_model"]["calls"] > 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["provenance"]["rap_prompts"] == "built-in" and summary["config"]["prompts"] == "built-in"
