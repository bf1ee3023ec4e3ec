"""GSM8K's registry entry: a local JSONL split (or the hub's test split, when online), and how its baselines run.

``rap-mcts`` and its twins search RAP's sub-questions (``srm_tasks.gsm8k.rap``) with llm-reasoners' settings:
4 sampled sub-questions per expansion, the "useful?" fast reward, answers sampled until a majority (the twins:
one greedy answer, judged by their own evaluator), reward r_useful**0.5 * confidence**0.5, MCTS with
``cum_reward=mean, calc_q=max`` over 10 iterations and the answer voted by the tree. With llm-reasoners' prompt
folder, ``cot`` is its 4-shot CoT (one greedy chain); the other methods search the step-wise task.
"""

from __future__ import annotations

import functools
from typing import Any

from srm_tasks.gsm8k.cot import GSM8KCoTTask
from srm_tasks.gsm8k.data import load_gsm8k, load_gsm8k_hub
from srm_tasks.gsm8k.rap import GSM8KRAPTask, SubQuestionProposer
from srm_tasks.gsm8k.rap_prompts import BUILT_IN, load_rap_prompts
from srm_tasks.gsm8k.rap_world import SubAnswerWorld
from srm_tasks.gsm8k.task import GSM8KTask
from srm_tasks.registry import Option, Options, TaskSpec, register

DEFAULT_STEPS = 5
RAP_STRATEGY = {"reward_mix": "product", "confidence_default": 0.8, "cum_reward": "mean", "calc_q": "max",
                "output": "vote"}  # llm-reasoners' rap_gsm8k: reward_confidence_default, cum_reward, calc_q, aggregator
SAMPLED_ANSWERS = {"samples": 8, "per_call": 2, "threshold": 0.5}  # n_confidence, early_stop_base, early_stop_threshold
GREEDY_ANSWER = {"samples": 1, "per_call": 1, "temperature": 0.0, "report_confidence": False}
COT_NEW_TOKENS = 256  # one whole chain per generation


def question_key(problem: Any) -> str:
    """Problems are the same when their questions are, up to case and spacing."""
    return " ".join(problem["question"].split()).lower()


def load_problems(options: Options) -> list[dict[str, Any]]:
    data = options.get("data")
    return load_gsm8k(data) if data else load_gsm8k_hub(options.get("split", "test"))


@functools.lru_cache(maxsize=16)
def rap_task(prompts: str, depth: int, seed: int) -> GSM8KRAPTask:
    return GSM8KRAPTask(load_rap_prompts(prompts), depth=depth, seed=seed)


def configure_method(family: str | None, kwargs: dict[str, Any], options: Options) -> dict[str, Any]:
    """RAP's search for the MCTS family, llm-reasoners' CoT for ``cot`` where its pool is there (see the module)."""
    prompts, seed = str(options.get("prompts") or BUILT_IN), options.get("seed") or 0
    if family == "mcts":
        temperature = kwargs["temperature"]
        judged_by_generator = kwargs["evaluator"] == "self_eval"
        answers = {**(SAMPLED_ANSWERS if judged_by_generator else GREEDY_ANSWER), "seed": kwargs["seed"]}
        answers.setdefault("temperature", temperature)
        k = kwargs["k"] or options.get("k") or 4
        out = {**kwargs, "task": rap_task(prompts, kwargs["max_depth"], seed), "k": k, "goal_test": "end",
               "proposals": SubQuestionProposer(k, temperature),
               "strategy_options": {**kwargs.get("strategy_options", {}), **RAP_STRATEGY},
               "world": lambda generator: SubAnswerWorld(generator, **answers)}
        if judged_by_generator:
            out["evaluator_options"] = {"intuition": "none"}  # RAP's fast reward is the "useful?" answer alone
        return out
    if family is None and prompts != BUILT_IN and (pool := load_rap_prompts(prompts)).cot_pool:
        return {**kwargs, "task": GSM8KCoTTask(pool.cot_pool, pool.cot_prefix, pool.source, seed=seed),
                "temperature": 0.0, "max_new_tokens": COT_NEW_TOKENS}  # llm-reasoners' CoT decodes greedily
    return kwargs


SPEC = register(TaskSpec(
    name="gsm8k",
    summary="GSM8K math word problems, one reasoning sentence per step (RAP: one sub-question per step)",
    make_task=lambda options: GSM8KTask(train_path=options.get("train"),
                                        max_steps=options.get("depth") or DEFAULT_STEPS),
    load_problems=load_problems,
    problem_key=question_key,
    default_depth=DEFAULT_STEPS,
    data_help="a GSM8K JSONL file (default: the hub's test split, when online)",
    options=(Option("train", "a GSM8K train JSONL for the few-shot examples (default: built in)", metavar="JSONL"),
             Option("prompts", "a folder of llm-reasoners' GSM8K prompts (prompt_pool.json, useful_examples.json, "
                               "cot.json) for RAP's sub-questions and CoT, or built-in", BUILT_IN, metavar="DIR")),
    configure_method=configure_method,
))
