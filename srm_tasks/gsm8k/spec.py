"""GSM8K's registry entry: a local JSONL split (or the hub's test split, when online)."""

from __future__ import annotations

from typing import Any

from srm_tasks.gsm8k.data import load_gsm8k, load_gsm8k_hub
from srm_tasks.gsm8k.task import GSM8KTask
from srm_tasks.registry import Option, Options, TaskSpec, register

DEFAULT_STEPS = 5


def question_key(problem: Any) -> str:
    """Problems are the same when their questions are, up to case and spacing."""
    return " ".join(problem["question"].split()).lower()


def load_problems(options: Options) -> list[dict[str, Any]]:
    data = options.get("data")
    return load_gsm8k(data) if data else load_gsm8k_hub(options.get("split", "test"))


SPEC = register(TaskSpec(
    name="gsm8k",
    summary="GSM8K math word problems, one reasoning sentence per step",
    make_task=lambda options: GSM8KTask(train_path=options.get("train"),
                                        max_steps=options.get("depth") or DEFAULT_STEPS),
    load_problems=load_problems,
    problem_key=question_key,
    default_depth=DEFAULT_STEPS,
    data_help="a GSM8K JSONL file (default: the hub's test split, when online)",
    options=(Option("train", "a GSM8K train JSONL for the few-shot examples (default: built in)", metavar="JSONL"),),
))
