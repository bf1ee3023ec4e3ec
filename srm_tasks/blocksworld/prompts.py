"""Few-shot plan prompts in the RAP prompt-pool format, and a built-in pool for machines without data.

A pool is ``{"intro": str, "example_pool": [{"init", "goal", "plan", ...}]}`` as in llm-reasoners'
``pool_prompt_v1.json``; its plans read ``"\\n<action>\\n...\\n[PLAN END]\\n"``. The prompt is the
intro, N examples, then the problem's statement and its plan so far, one action per line, so that
the next action is what a base model writes next. The built-in pool is this project's own text:
an intro in its own words and two problems found by its generator, solved by its BFS at load time.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TypedDict

from srm_tasks.blocksworld.english import action_text, facts_text
from srm_tasks.blocksworld.world import parse_atom, solve

PLAN_END = "[PLAN END]"


class PromptPool(TypedDict):
    intro: str
    examples: list[dict[str, str]]  # each with "init", "goal" and "plan" as in the pool file


DEFAULT_INTRO = """\
I am moving blocks between towers on a table, one block at a time. There are four kinds of move:

pick up a block from the table
unstack a block from on top of another block
put down the block I am holding onto the table
stack the block I am holding on top of another block

These rules always hold:
My hand holds at most one block, and I can pick up or unstack a block only while my hand is empty.
A block is clear when no block sits on it and I am not holding it; I can only pick up or unstack a clear block.
I can pick up a block only from the table, and unstack a block only from the block it really sits on.
I can put down or stack only the block I am holding, and I can stack it only on a clear block.
Once I put down or stack a block, my hand is empty again.

"""

# Two 4-block problems from generate_problems (not among the public PlanBench problems): (init, goal).
DEFAULT_EXAMPLES = (
    (["(clear b)", "(clear c)", "(clear d)", "(handempty)", "(on c a)", "(ontable a)", "(ontable b)",
      "(ontable d)"], ["(on a c)", "(on c b)"]),
    (["(clear a)", "(clear d)", "(handempty)", "(on a c)", "(on d b)", "(ontable b)", "(ontable c)"],
     ["(on a b)", "(on d a)"]),
)


def statement(init_text: str, goal_text: str) -> str:
    """RAP's problem statement up to the plan marker."""
    return (f"[STATEMENT]\nAs initial conditions I have that, {init_text}.\nMy goal is to have that {goal_text}."
            "\n\nMy plan is as follows:\n\n[PLAN]")


def load_prompt_pool(path: str | Path) -> PromptPool:
    """``{"intro", "examples"}`` from a RAP pool JSON, checked so a wrong file fails here and not mid-search."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read a prompt pool: {exc}") from None
    if not (isinstance(raw, dict) and isinstance(raw.get("intro"), str) and isinstance(raw.get("example_pool"), list)):
        raise ValueError(f"{path}: a prompt pool needs 'intro' (str) and 'example_pool' (list)")
    for i, ex in enumerate(raw["example_pool"]):
        if not (isinstance(ex, dict) and all(isinstance(ex.get(k), str) for k in ("init", "goal", "plan"))
                and ex["plan"].startswith("\n") and ex["plan"].endswith(PLAN_END + "\n")):
            raise ValueError(f"{path}: example_pool[{i}] needs 'init', 'goal' and a plan '\\n...\\n{PLAN_END}\\n'")
    return {"intro": raw["intro"], "examples": [{k: ex[k] for k in ("init", "goal", "plan")}
                                                for ex in raw["example_pool"]]}


@functools.cache
def default_pool() -> PromptPool:
    """The built-in pool: DEFAULT_INTRO and DEFAULT_EXAMPLES with their optimal plans."""
    examples = []
    for init, goal in DEFAULT_EXAMPLES:
        init_facts, goal_facts = frozenset(map(parse_atom, init)), frozenset(map(parse_atom, goal))
        plan = solve(init_facts, goal_facts)
        assert plan is not None
        examples.append({"init": facts_text(init_facts), "goal": facts_text(goal_facts),
                         "plan": "".join(f"\n{action_text(op)}" for op in plan) + f"\n{PLAN_END}\n"})
    return {"intro": DEFAULT_INTRO, "examples": examples}


def plan_prompt(pool: PromptPool, n_shots: int, init_text: str, goal_text: str, steps: list[str]) -> str:
    """Intro, ``n_shots`` examples, then the statement and the steps so far, ending on a new line."""
    shots = "".join(statement(ex["init"], ex["goal"]) + ex["plan"] + "\n" for ex in pool["examples"][:n_shots])
    return pool["intro"] + shots + statement(init_text, goal_text) + "\n" + "".join(s + "\n" for s in steps)


def self_eval_prompt(pool: PromptPool, state_text: str, goal_text: str, action: str) -> str:
    """A RAP-like self-evaluation question whose answer the search reads as " Yes" against " No"."""
    return (pool["intro"] + f"[STATEMENT]\nAs current conditions I have that, {state_text}.\n"
            f"My goal is to have that {goal_text}.\n[ACTION]\n{action}\n"
            "Is this action a good next step towards my goal? Answer Yes or No.\nAnswer:")
