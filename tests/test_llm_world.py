"""RAP's LLM world model for Blocksworld: the change reader on the pool's own demonstrations, invalid predictions,
its cost billed to the world model, and plans graded by the simulator, not by what the model predicted."""

from __future__ import annotations

import json
import re

import pytest

from evals.methods import SearchSettings, search_kwargs
from evals.run import main
from srm_agent.generators import Generation, Usage
from srm_agent.rule import Candidate
from srm_agent.search import InvalidStep, build_tree_search
from srm_agent.search.tree import nodes_of
from srm_tasks import get_spec
from srm_tasks.blocksworld import BlocksworldTask, default_pool, generate_problems, parse_action, validate_plan
from srm_tasks.blocksworld.changes import apply_change, parse_state_text
from srm_tasks.blocksworld.english import change_text
from srm_tasks.blocksworld.llm_world import BlocksworldLLMWorld, predicted_facts
from srm_tasks.blocksworld.problems import make_problem, problem_facts
from srm_tasks.blocksworld.world import apply, legal_ops, parse_atom
from tests.conftest import SHARED, make_tiny_lm

POOL_V1 = SHARED / "data" / "blocksworld" / "llm-reasoners" / "prompts" / "pool_prompt_v1.json"
SCENARIO = re.compile(r"\[STATE 0\] (.*)\n\[ACTION\] (.*)\n\[CHANGE\] (.*)\n\[STATE 1\] (.*)\n")


def facts(*atoms: str) -> frozenset:
    return frozenset(map(parse_atom, atoms))


def demos(template: str) -> list[tuple[str, ...]]:
    return [m.groups() for m in SCENARIO.finditer(template)]


@pytest.mark.skipif(not POOL_V1.is_file(), reason=f"RAP's prompt pool is not at {POOL_V1}")
def test_the_pools_own_changes_lead_to_its_own_next_states():
    pool = json.loads(POOL_V1.read_text())
    keys = [k for k in pool if k.startswith("world_update_")]
    assert len(keys) == 4
    for key in keys:
        shown = demos(pool[key])
        assert len(shown) == 2, key
        for before, _, change, after in shown:
            assert apply_change(parse_state_text(before), change) == parse_state_text(after), (key, change)


def test_builtin_world_prompts_show_true_changes_in_the_same_format():
    for name, template in default_pool()["world_update"].items():
        assert template.count("{}") == 2 and template.endswith("[STATE 0] I have that, {}\n[ACTION] {}\n[CHANGE]")
        shown = demos(template)
        assert len(shown) == 2, name
        for before, action, change, after in shown:
            op = parse_action(action)
            assert op[0] == name and change == change_text(op)
            assert apply_change(parse_state_text(before), change) == parse_state_text(after)


def test_each_actions_change_sentence_reads_back_as_the_simulators_step():
    for problem in generate_problems(3, blocks=(4, 4), seed=3, steps=(2, 4)):
        state, _ = problem_facts(problem)
        for op in legal_ops(state):
            assert predicted_facts(state, change_text(op)) == apply(state, op), op


class Scripted:
    """A generator whose world-model answers are scripted (``change(prompt)``); plan and evaluation prompts go to
    ``inner``. Each world call costs 1 call, the prompt's length in tokens and 7 generated tokens."""

    def __init__(self, change, inner=None) -> None:
        self.change, self.inner, self.world_calls = change, inner, []

    def propose(self, prompt, k, **sampling):
        if not prompt.endswith("[CHANGE]"):
            return self.inner.propose(prompt, k, **sampling)
        self.world_calls.append((prompt, sampling))
        return Generation([Candidate(" " + self.change(prompt) + "\n", -1.0, 7)], Usage(1, len(prompt), 7))

    def score_choices(self, prompt, choices):
        if self.inner is None:
            return Generation([Candidate(c, -1.0, 1) for c in choices], Usage(1, len(prompt), 0))
        return self.inner.score_choices(prompt, choices)


def honest(prompt: str) -> str:
    return change_text(parse_action(prompt.rsplit("[ACTION] ", 1)[1].split("\n")[0]))


ON_TABLE = ["(clear a)", "(clear b)", "(clear c)", "(handempty)", "(ontable a)", "(ontable b)", "(ontable c)"]


def test_the_prompt_is_the_operators_template_and_the_call_greedy():
    task, generator = BlocksworldTask(), Scripted(honest)
    world = BlocksworldLLMWorld(generator, default_pool())
    state = task.initial_state(make_problem("p", facts(*ON_TABLE), facts("(on a b)")))
    step = world.step(task, state, "pick up the red block")
    prompt, sampling = generator.world_calls[0]
    assert prompt == default_pool()["world_update"]["pick-up"].replace(
        "{}", "the red block is clear, the blue block is clear, the orange block is clear, the hand is empty, the red "
        "block is on the table, the blue block is on the table and the orange block is on the table.", 1).replace(
        "{}", "Pick up the red block.", 1)
    assert sampling["temperature"] == 0 and "\n" in sampling["stop"] and sampling["max_new_tokens"] <= 128
    assert step.state["facts"] == task.step(state, "pick up the red block")["facts"]
    assert step.state["steps"] == ["pick up the red block"] and step.usage == Usage(1, len(prompt), 7)
    world.step(task, step.state, "stack the red block on top of the blue block")
    assert "I have that, the blue block is clear, the orange block is clear, the red block is in the hand, the hand " \
           "is holding the red block, the blue block is on the table, and the orange block is on the table.\n" \
           "[ACTION] Stack the red block on top of the blue block.\n[CHANGE]" in generator.world_calls[1][0]


@pytest.mark.parametrize("change", [
    "The red block flies away.",  # not a change sentence
    "",  # nothing written
    "The hand was holding the red block and is now empty.",  # removes a fact that does not hold
    "The red block is now on top of the blue block.",  # the red block in two places
    "The green block is now clear.",  # a block this problem does not have
    "The red block is no longer on the table.",  # the red block nowhere
])
def test_a_change_that_cannot_be_read_or_taken_is_an_invalid_step_that_still_costs(change):
    task = BlocksworldTask()
    state = task.initial_state(make_problem("p", facts(*ON_TABLE), facts("(on a b)")))
    world = BlocksworldLLMWorld(Scripted(lambda prompt: change), default_pool())
    with pytest.raises(InvalidStep) as caught:
        world.step(task, state, "pick up the red block")
    assert caught.value.usage.calls == 1 and caught.value.usage.generated_tokens == 7
    assert "world model" in str(caught.value)


def test_an_illegal_action_is_invalid_before_any_call():
    task, generator = BlocksworldTask(), Scripted(honest)
    state = task.initial_state(make_problem("p", facts(*ON_TABLE), facts("(on a b)")))
    with pytest.raises(InvalidStep, match="cannot stack") as caught:
        BlocksworldLLMWorld(generator, default_pool()).step(task, state, "stack the red block on top of the blue block")
    assert caught.value.usage == Usage() and generator.world_calls == []


def rap_mcts(task, generator, world, depth: int, iterations: int = 4):
    settings = SearchSettings(mcts_iters=iterations)
    return build_tree_search(task, generator, world=world, **search_kwargs("rap-mcts", settings, depth))


def test_a_plan_the_model_believes_solves_is_graded_by_the_simulator():
    """The liar says any first action puts the red block on the blue one: the search stops at a believed
    solution, and the simulator says it is not one."""
    liar = Scripted(lambda prompt: "The red block was on the table and is now on top of the blue block, and the blue "
                                   "block is no longer clear.")
    problem = make_problem("p", facts(*ON_TABLE), facts("(on a b)"))
    world = BlocksworldLLMWorld(liar, default_pool())
    final = rap_mcts(BlocksworldTask(), liar, world, depth=2).invoke({"problem": problem})
    result = final["result"]
    believed = nodes_of(final["tree"])[result["path"][-1]]
    assert believed["solved"] and "(on a b)" in believed["task_state"]["facts"]
    assert len(result["path"]) == 2 and not result["solved"]
    assert validate_plan(problem, result["answer"].split("\n")) == (True, False, None)
    assert result["usage"]["world_model"]["calls"] == len(liar.world_calls) >= 1


def test_a_plan_the_model_predicts_truly_is_solved():
    problem = make_problem("p", facts("(clear b)", "(holding a)", "(ontable b)"), facts("(on a b)"))
    generator, task = Scripted(honest), BlocksworldTask()
    final = rap_mcts(task, generator, BlocksworldLLMWorld(generator, default_pool()), depth=2).invoke(
        {"problem": problem})
    assert final["result"]["solved"] and final["result"]["answer"] == "stack the red block on top of the blue block"
    for node in nodes_of(final["tree"]):
        if node["parent"] is not None and node["task_state"]:
            parent = nodes_of(final["tree"])[node["parent"]]["task_state"]
            assert node["task_state"] == task.step(parent, node["action"])


def test_rap_mcts_with_the_llm_world_model_bills_its_tokens_to_the_world_model(tmp_path, tiny_lm_tokenizer,
                                                                               monkeypatch):
    monkeypatch.delenv("REDIS_URL", raising=False)
    lm = tmp_path / "tiny-lm"
    make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=4096).save_pretrained(lm)
    tiny_lm_tokenizer.save_pretrained(lm)
    out = tmp_path / "run"
    assert "llm" in get_spec("blocksworld").world_models
    code = main(["--bench", "blocksworld", "--methods", "rap-mcts", "--world-model", "llm", "--generate", "1",
                 "--blocks", "3", "--mcts-iters", "2", "--max-expansions", "2", "--prompts", "built-in",
                 "--generator", str(lm), "--device", "cpu", "--out", str(out)])
    assert code == 0
    [record] = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    usage = record["usage"]
    roles = ("proposal", "evaluation", "world_model")
    assert usage["world_model"]["calls"] >= 1 and usage["world_model"]["prompt_tokens"] > 0
    assert usage["evaluation"]["calls"] >= 1
    for total, field in (("generator_calls", "calls"), ("prompt_tokens", "prompt_tokens"),
                         ("generated_tokens", "generated_tokens")):
        assert usage[total] == sum(usage[role][field] for role in roles)
    trace = json.loads(open(record["trace"]).read())
    stepped = [n for n in trace["nodes"] if n["parent"] is not None and (n["invalid"] or n["state"])]
    assert usage["world_model"]["calls"] == len(stepped)  # one greedy call per state predicted (or failed)
    assert trace["params"]["world_model"] == "llm"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["config"]["world_model"] == "llm"
    assert summary["methods"]["rap-mcts"]["by_role"]["world_model"]["calls"] == usage["world_model"]["calls"]
