"""The GSM8K domain: loader and answer checking on the real files, the task's logic, a search over it."""

from __future__ import annotations

import json
import sys

import pytest

from srm_tasks.gsm8k import GSM8KTask, answers_match, extract_answer, load_gsm8k, load_gsm8k_hub, solution_lines
from srm_agent.search.task import Task
from graphs.tree_search import build_tree_search
from tests.conftest import SHARED

DATA = SHARED / "data" / "gsm8k"
needs_data = pytest.mark.skipif(not (DATA / "test.jsonl").is_file(),
                                reason=f"the GSM8K sample is not at {DATA} (a user's clone has no ../shared)")
SOLVERS = ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")
DUCKS = {"question": "Janet's ducks lay 16 eggs per day. She eats three for breakfast and bakes muffins with four. "
                     "She sells the rest for $2 per egg. How much does she make every day?", "answer": "18"}


def raw_lines(name: str) -> list[dict]:
    return [json.loads(line) for line in (DATA / name).read_text(encoding="utf-8").splitlines()]


# -- loader -------------------------------------------------------------------------------------------

@needs_data
def test_loads_the_real_test_and_train_splits():
    test = load_gsm8k(DATA / "test.jsonl")
    assert len(test) == 1319 and len(load_gsm8k(DATA / "train.jsonl")) == 7473
    assert test[0]["id"] == "gsm8k-test-0" and test[0]["answer"] == "18"
    assert test[0]["question"].startswith("Janet")
    assert "####" not in test[0]["solution"] and test[0]["solution"].endswith("farmer’s market.")
    raw = raw_lines("test.jsonl")
    assert raw[146]["answer"].endswith("#### 2,125") and test[146]["answer"] == "2125"  # golds with commas
    assert raw[489]["answer"].endswith("#### -10") and test[489]["answer"] == "-10"  # a negative gold
    assert load_gsm8k(DATA / "test.jsonl", limit=3, offset=5) == test[5:8]


def test_malformed_and_missing_files_name_the_file_and_line(tmp_path):
    good = json.dumps({"question": "1 + 1?", "answer": "1 + 1 = 2\n#### 2"})
    cases = {"bad-json": "{not json", "no-gold": json.dumps({"question": "q", "answer": "2"}),
             "no-question": json.dumps({"answer": "#### 2"}), "blank": "",
             "words": json.dumps({"question": "q", "answer": "#### two"})}
    for name, line in cases.items():
        path = tmp_path / f"{name}.jsonl"
        path.write_text(f"{good}\n{line}\n{good}\n", encoding="utf-8")
        with pytest.raises(ValueError, match=rf"{name}\.jsonl:2: "):
            load_gsm8k(path)
        assert load_gsm8k(path, limit=1) == [{"id": f"gsm8k-{name}-0", "question": "1 + 1?", "answer": "2",
                                              "solution": "1 + 1 = 2"}]
    with pytest.raises(FileNotFoundError, match="nowhere.jsonl"):
        load_gsm8k(tmp_path / "nowhere.jsonl")


def test_hub_loader_without_datasets_says_to_pass_a_local_file(monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # makes `from datasets import ...` fail
    with pytest.raises(RuntimeError, match="use a local GSM8K JSONL file"):
        load_gsm8k_hub("test")


# -- answers ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("#### 42", "42"), ("The answer is 1,234.", "1234"), ("$5.50", "5.5"), ("The answer is $5.50.", "5.5"),
    ("The answer is -3 degrees.", "-3"), ("the answer is: 0.75", "0.75"), ("A: 7/14", "0.5"),
    ("The answer is 10/3.", "10/3"), ("The answer is 2 + 3 = 5.", "5"), ("18.0", "18"),
    ("She makes 9 * 2 = $<<9*2=18>>18.\nThe answer is 18.", "18"), ("#### 1\nThe answer is 2.", "2"),
    ("She has 26 pencils left.", None), ("The answer is unclear.", None), ("", None),
])
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_answers_match_numerically():
    for pred, gold in [("18.0", "18"), ("1,000", "1000"), ("$5.50", "5.5"), ("-2", "-2.00"), ("0.5", "1/2")]:
        assert answers_match(pred, gold), (pred, gold)
    for pred, gold in [("17", "18"), (None, "18"), ("18", None), ("18.01", "18"), ("-18", "18")]:
        assert not answers_match(pred, gold), (pred, gold)


@needs_data
def test_extraction_on_real_gold_answers():
    raw = raw_lines("test.jsonl")
    with_commas = [r for r in raw if "," in r["answer"].rpartition("#### ")[2]]
    assert len(with_commas) == 14
    for record in raw[:40] + with_commas:
        gold = record["answer"].rpartition("#### ")[2]
        assert extract_answer(record["answer"]) == gold.replace(",", "")


@needs_data
def test_extraction_agrees_with_openai_grading_of_model_solutions():
    """Each of 4 × 1,319 real samples ends in "A: N" (or is cut off); our verdict must equal is_correct."""
    golds = [p["answer"] for p in load_gsm8k(DATA / "test.jsonl")]
    verdicts = {True: 0, False: 0}
    for gold, record in zip(golds, raw_lines("example_model_solutions.jsonl"), strict=True):
        assert extract_answer(record["ground_truth"]) == gold
        for solver in SOLVERS:
            sample = record[solver]
            assert answers_match(extract_answer(sample["solution"]), gold) == sample["is_correct"], (gold, sample)
            verdicts[sample["is_correct"]] += 1
    assert verdicts[True] > 1000 and verdicts[False] > 1000  # both kinds really exercised


# -- the task -----------------------------------------------------------------------------------------

def test_prompt_shape_with_builtin_examples():
    task = GSM8KTask(n_shots=2)
    assert isinstance(task, Task) and task.legal_actions(task.initial_state(DUCKS)) is None
    state = task.initial_state(DUCKS)
    prompt = task.prompt(state)
    assert prompt.count("Question: ") == 3 and prompt.count("The answer is ") == 3  # 2 shots, and the instruction
    assert prompt.endswith(f"Question: {DUCKS['question']}\nAnswer:\n")  # the next line is the first step
    state = task.step(state, "  She sells 16 - 3 - 4 = 9 eggs.\n")
    assert task.prompt(state).endswith("Answer:\nShe sells 16 - 3 - 4 = 9 eggs.\n")
    assert task.describe(state) == f"Question: {DUCKS['question']}\nAnswer:\nShe sells 16 - 3 - 4 = 9 eggs.\n"
    self_eval, good, bad = task.self_eval_query(state, "She makes 9 * 2 = $18.")
    assert self_eval.startswith(task.describe(state)) and self_eval.endswith("Answer Yes or No.\nAnswer:")
    assert (good, bad) == (" Yes", " No")
    assert GSM8KTask(n_shots=0).prompt(task.initial_state(DUCKS)).count("Question: ") == 1


@needs_data
def test_prompt_shape_with_train_examples():
    task = GSM8KTask(DATA / "train.jsonl", n_shots=4, max_steps=5, seed=0)
    prompt = task.prompt(task.initial_state(DUCKS))
    shots = prompt.split("\n\n")[1:-1]
    assert len(shots) == 4
    for shot in shots:
        lines = shot.splitlines()
        assert lines[0].startswith("Question: ") and lines[1] == "Answer:"
        assert 2 <= len(lines) - 2 <= 5 and lines[-1].startswith("The answer is ") and lines[-1].endswith(".")
    assert "<<" not in prompt and "####" not in prompt
    assert GSM8KTask(DATA / "train.jsonl", seed=0).prompt({"question": "q", "gold": None, "steps": []}) == \
        task.prompt({"question": "q", "gold": None, "steps": []})
    assert GSM8KTask(DATA / "train.jsonl", seed=1).header != task.header


def test_solution_lines_are_sentences_without_calculator_notes():
    solution = "Mr. Lee buys 3 * 2 = <<3*2=6>>6 pens. Then he pays $1.50 each.\nSo he pays 6 * 1.5 = $<<6*1.5=9>>9"
    assert solution_lines(solution, "9") == ["Mr. Lee buys 3 * 2 = 6 pens.", "Then he pays $1.50 each.",
                                             "So he pays 6 * 1.5 = $9", "The answer is 9."]


def chain(task: GSM8KTask, problem, steps):
    state = task.initial_state(problem)
    seen = []
    for line in steps:
        state = task.step(state, line)
        seen.append(task.is_terminal(state))
    return state, seen


def test_terminal_and_solved_on_correct_and_incorrect_chains():
    task = GSM8KTask()
    right, seen = chain(task, DUCKS, ["She has 16 - 3 - 4 = 9 eggs to sell.", "She makes 9 * 2 = $18.",
                                      "The answer is $18."])
    assert seen == [False, False, True]
    assert task.is_solved(right) and task.goal_progress(right) == 1.0 and task.answer(right) == "18"
    wrong, seen = chain(task, DUCKS, ["She has 16 - 3 = 13 eggs to sell.", "The answer is 26."])
    assert seen == [False, True]
    assert not task.is_solved(wrong) and task.goal_progress(wrong) == 0.0 and task.answer(wrong) == "26"
    unfinished, _ = chain(task, DUCKS, ["She has 9 eggs to sell."])
    assert task.answer(unfinished) is None and not task.is_solved(unfinished)
    assert json.loads(json.dumps(right)) == right  # states live in the graph state
    with pytest.raises(ValueError, match="empty"):
        task.step(right, " \n ")


def test_the_last_step_is_led_into_an_answer():
    task = GSM8KTask(max_steps=2)
    state, seen = chain(task, DUCKS, ["She has 16 - 3 - 4 = 9 eggs to sell."])
    assert task.prompt(state).endswith("9 eggs to sell.\nThe answer is")
    state = task.step(state, "$18.")
    assert state["steps"][-1] == "The answer is $18." and task.is_terminal(state) and task.is_solved(state)


def test_problem_forms():
    task = GSM8KTask()
    assert task.initial_state({"question": "q", "answer": "x = 2\n#### 1,000"})["gold"] == "1000"  # a raw record
    bare = task.initial_state("What is 2 + 2?")
    assert bare["gold"] is None and not task.is_solved(task.step(bare, "The answer is 4."))
    for bad in ({"question": "q", "answer": "many"}, {"answer": "1"}, "", 7):
        with pytest.raises(ValueError):
            task.initial_state(bad)


def test_drives_the_tree_search(tiny_generator):
    task = GSM8KTask(n_shots=1)  # one shot: the tiny LM has 512 positions and its BPE knows no arithmetic words
    search = build_tree_search(task, tiny_generator, strategy="bfs", evaluator="prior", k=2, max_depth=2,
                               max_new_tokens=8)
    out = search.invoke({"problem": {"question": "Tom has 3 apples and buys 4 more. How many does he have?",
                                     "answer": "7"}})
    result = out["result"]
    assert result["failure"] is None and isinstance(result["solved"], bool)
    assert result["usage"]["expansions"] >= 1 and result["usage"]["generator_calls"] >= 1
    from srm_agent.search.tree import nodes_of

    stepped = [n for n in nodes_of(out["tree"])[1:] if n["task_state"] is not None]
    assert stepped and all(len(n["task_state"]["steps"]) == n["depth"] <= 2 for n in stepped)
