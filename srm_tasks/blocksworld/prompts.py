"""Few-shot prompts in the RAP prompt-pool format, and a built-in pool for machines without data.

A pool file is llm-reasoners' ``pool_prompt_v1.json``: ``intro``, ``example_pool`` (demonstrations
``{"init", "goal", "plan"}`` whose plans read ``"\\n<action>\\n...\\n[PLAN END]\\n"``), ``self-eval`` (a
5-shot template asking whether an action is "good" or "bad") and ``world_update_*`` (2-shot templates
for RAP's world model, one per operator, each ending in ``[CHANGE]``). The plan prompt is the intro, N
demonstrations, then the problem's statement and its plan so far, one action per line, so that the next
action is what a base model writes next.

The built-in pool is this project's own text: an intro in its own words, two problems found by its
generator and solved by its BFS at load time, and five self-evaluation demonstrations labelled by the
optimal distance to the goal, and world-model templates whose scenarios are transitions of those problems,
worded by ``english.change_text``. A pool file without its own templates gets these, as it gets the
self-evaluation.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import TypedDict

from srm_tasks.blocksworld.english import action_text, believed_state_text, change_text, facts_text
from srm_tasks.blocksworld.world import Op, State, apply, legal_ops, parse_atom, solve

PLAN_END = "[PLAN END]"


class PromptPool(TypedDict):
    source: str  # "built-in" or the pool file's path
    intro: str
    examples: list[dict[str, str]]  # each with "init", "goal" and "plan" as in the pool file
    self_eval: str  # a template with <init_state>, <goals> and <action>
    world_update: dict[str, str]  # operator ("pick-up", ...) -> a template with two "{}" (state, action)


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


SELF_EVAL_ASK = "Please evaluate whether the given action is a good one under certain conditions.\n\n"
SELF_EVAL_QUERY = "[STATEMENT]\nAs initial conditions I have that, <init_state>\nMy goal is to <goals>\n[ACTION]\n<action>\n" \
                  "[EVALUATION]\n"
WORLD_UPDATE_KEYS = {"pick-up": "world_update_pickup", "unstack": "world_update_unstack",
                     "put-down": "world_update_putdown", "stack": "world_update_stack"}


def load_prompt_pool(path: str | Path) -> PromptPool:
    """A RAP pool JSON, checked so a wrong file fails here and not mid-search."""
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
    self_eval = raw.get("self-eval")
    if self_eval is not None and not (isinstance(self_eval, str)
                                      and all(m in self_eval for m in ("<init_state>", "<goals>", "<action>"))):
        raise ValueError(f"{path}: 'self-eval' must be a template with <init_state>, <goals> and <action>")
    world_update = {op: raw[key] for op, key in WORLD_UPDATE_KEYS.items() if isinstance(raw.get(key), str)}
    if any(t.count("{}") != 2 for t in world_update.values()):
        raise ValueError(f"{path}: each world_update_* template needs two '{{}}' (the state and the action)")
    return {"source": str(path), "intro": raw["intro"],
            "examples": [{k: ex[k] for k in ("init", "goal", "plan")} for ex in raw["example_pool"]],
            "self_eval": self_eval if self_eval is not None else builtin_self_eval(raw["intro"]),
            "world_update": (world_update if len(world_update) == len(WORLD_UPDATE_KEYS)
                             else builtin_world_update(raw["intro"]))}


def _facts(atoms: list[str]) -> frozenset:
    return frozenset(map(parse_atom, atoms))


@functools.cache
def default_pool() -> PromptPool:
    """The built-in pool: DEFAULT_INTRO, DEFAULT_EXAMPLES with their optimal plans, and its own self-evaluation."""
    examples = []
    for init, goal in DEFAULT_EXAMPLES:
        plan = solve(_facts(init), _facts(goal))
        assert plan is not None
        examples.append({"init": facts_text(_facts(init)), "goal": facts_text(_facts(goal)),
                         "plan": "".join(f"\n{action_text(op)}" for op in plan) + f"\n{PLAN_END}\n"})
    return {"source": "built-in", "intro": DEFAULT_INTRO, "examples": examples,
            "self_eval": builtin_self_eval(DEFAULT_INTRO), "world_update": builtin_world_update(DEFAULT_INTRO)}


def builtin_self_eval(intro: str) -> str:
    """A 5-shot self-evaluation template of this project's own: states of the built-in examples, each with one
    action labelled "good" when it shortens the optimal plan and "bad" otherwise (3 good, 2 bad, as RAP's)."""
    demos = []
    for n, (init, goal) in enumerate(DEFAULT_EXAMPLES):
        state, goal_facts = _facts(init), _facts(goal)
        plan = solve(state, goal_facts)
        assert plan
        worse = next(op for op in legal_ops(state) if len(solve(apply(state, op), goal_facts) or plan) >= len(plan))
        picks = [(state, plan[0], "good"), (state, worse, "bad")]
        if n == 0:
            picks.append((apply(state, plan[0]), plan[1], "good"))
        for facts, op, label in picks:
            demos.append(f"[STATEMENT]\nAs initial conditions I have that, {facts_text(facts)}.\n"
                         f"My goal is to have that {facts_text(goal_facts)}.\n[ACTION]\n{action_text(op)}\n"
                         f"[EVALUATION]\n{label}\n\n")
    return intro + SELF_EVAL_ASK + "".join(demos) + SELF_EVAL_QUERY


WORLD_UPDATE_ASK = "For a state and an action, I say what the action changes and what the state is after it.\n\n"


def _scenario(number: int, state: State, op: Op) -> str:
    after = apply(state, op)
    return (f"[SCENARIO {number}]\n[STATE 0] I have that, {believed_state_text(state)}\n"
            f"[ACTION] {action_text(op).capitalize()}.\n[CHANGE] {change_text(op)}\n"
            f"[STATE 1] I have that, {believed_state_text(after)}\n\n")


def builtin_world_update(intro: str) -> dict[str, str]:
    """A 2-shot world-model template of this project's own per operator: the first two states along the built-in
    examples' optimal plans where the operator applies, each with its change and the state after it."""
    shots: dict[str, list[tuple[State, Op]]] = {name: [] for name in WORLD_UPDATE_KEYS}
    for init, goal in DEFAULT_EXAMPLES:
        state = _facts(init)
        for step in [*(solve(state, _facts(goal)) or []), None]:
            for op in legal_ops(state):
                if len(shots[op[0]]) < 2 and all(seen != state for seen, _ in shots[op[0]]):
                    shots[op[0]].append((state, op))
            state = apply(state, step) if step else state
    query = f"[SCENARIO 3]\n[STATE 0] I have that, {{}}\n[ACTION] {{}}\n[CHANGE]"
    return {name: intro + WORLD_UPDATE_ASK + "".join(_scenario(n, s, op) for n, (s, op) in enumerate(pairs, 1)) + query
            for name, pairs in shots.items()}


def world_update_prompt(pool: PromptPool, state_text: str, op: Op) -> str:
    """The pool's world-model template for ``op``'s operator, filled in as RAP fills it (the action capitalised,
    with a full stop); the generator's continuation is the change."""
    action = action_text(op).capitalize() + "."
    return pool["world_update"][op[0]].replace("{}", state_text, 1).replace("{}", action, 1)


def plan_prompt(pool: PromptPool, shots: list[int], init_text: str, goal_text: str, steps: list[str]) -> str:
    """Intro, the demonstrations ``shots`` (indices into the pool), the statement and the steps so far."""
    demos = "".join(statement(pool["examples"][i]["init"], pool["examples"][i]["goal"]) + pool["examples"][i]["plan"]
                    + "\n" for i in shots)
    return pool["intro"] + demos + statement(init_text, goal_text) + "\n" + "".join(s + "\n" for s in steps)


def self_eval_prompt(pool: PromptPool, state_text: str, goal_text: str, action: str) -> str:
    """The pool's self-evaluation template filled in as RAP fills it; the answer read is "good"."""
    return (pool["self_eval"].replace("<init_state>", f"{state_text}.").replace("<goals>", f"have that {goal_text}.")
            .replace("<action>", action))
