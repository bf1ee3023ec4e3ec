"""Blocksworld in RAP's English: facts, goals and actions rendered and actions parsed back, and the states and
``[CHANGE]`` sentences of RAP's world-model prompts (read back by ``changes``).

The wording follows llm-reasoners' bw_config.yaml (PDDL objects a, b, c ... are "the red block",
"the blue block", "the orange block" ...; facts sorted by predicate then arguments and joined as
"A, B and C"), so prompts built here read like the RAP prompt pools and a model's output can be
mapped back to operators. The colours are restated here because the product runs without the
data folder; the tests check them against the yaml.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from srm_tasks.blocksworld.world import Fact, NotApplicable, Op, State, apply, format_atom

COLOURS = {"a": "red", "b": "blue", "c": "orange", "d": "yellow", "e": "white", "f": "magenta",
           "g": "black", "h": "cyan", "i": "green", "j": "violet", "k": "silver", "l": "gold"}
BLOCK_OF = {colour: block for block, colour in COLOURS.items()}

FACT_TEXT = {"clear": "{} is clear", "handempty": "the hand is empty", "holding": "the hand is holding {}",
             "on": "{} is on top of {}", "ontable": "{} is on the table"}
ACTION_TEXT = {"pick-up": "pick up {}", "put-down": "put down {}", "stack": "stack {} on top of {}",
               "unstack": "unstack {} from on top of {}"}
_ACTION_RE = {name: re.compile(re.escape(text).replace(r"\{\}", r"the ([a-z]+) block"))
              for name, text in ACTION_TEXT.items()}


def block_text(block: str) -> str:
    if block not in COLOURS:
        raise ValueError(f"block {block!r} has no colour name (blocks are named {', '.join(COLOURS)})")
    return f"the {COLOURS[block]} block"


def join(items: list[str]) -> str:
    """RAP's list style: "A, B and C"."""
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def facts_text(facts: Iterable[Fact]) -> str:
    """A state or goal as one RAP-style clause list, facts sorted by predicate then arguments."""
    ordered = sorted(facts)
    if not ordered:
        raise ValueError("nothing to describe: no facts")
    return join([FACT_TEXT[f[0]].format(*map(block_text, f[1:])) for f in ordered])


_SUPPORT_GOAL = {"on": "on top of {1}", "ontable": "on the table"}


def arrangement_text(facts: State, goal: State = frozenset()) -> str:
    """The blocks as stacks, each read top to bottom, and the hand: a compact view of the same facts.

    "the red block on the blue block on the table; the orange block on the table; the hand is empty"

    With a ``goal``, each block carries its goal beside it, worded as an action would say it and marked
    "met" where it holds, so a move can be judged without matching the goal's blocks against the
    arrangement across the whole text: "the red block (goal met: on top of the blue block) on the blue
    block on the table; the orange block (goal: on top of the red block) on the table; the hand is empty".
    Goal facts that are not about where a block stands (clear, the hand) are not shown here.
    """
    notes: dict[str, list[str]] = {}
    for fact in sorted(goal):
        if fact[0] in _SUPPORT_GOAL:
            where = _SUPPORT_GOAL[fact[0]].format(*map(block_text, fact[1:]))
            notes.setdefault(fact[1], []).append(f"{'goal met' if fact in facts else 'goal'}: {where}")

    def named(block: str) -> str:
        return block_text(block) + (f" ({'; '.join(notes[block])})" if block in notes else "")

    on = {f[1]: f[2] for f in facts if f[0] == "on"}
    below = set(on.values())
    tops = sorted(b for b in {f[1] for f in facts if f[0] in ("on", "ontable")} if b not in below)
    stacks = []
    for top in tops:
        chain, block = [named(top)], top
        while block in on:
            block = on[block]
            chain.append(named(block))
        stacks.append(" on ".join(chain) + " on the table")
    held = [f[1] for f in facts if f[0] == "holding"]
    hand = f"the hand is holding {named(held[0])}" if held else "the hand is empty"
    return "; ".join([*stacks, hand])


def other_goal_facts(goal: State) -> list[Fact]:
    """The goal facts ``arrangement_text`` cannot show beside a block (clear, the hand)."""
    return sorted(f for f in goal if f[0] not in _SUPPORT_GOAL)


# RAP's world model writes a state as bw_utils.apply_change leaves it: the held block is also "in the hand",
# and the clauses go clear/in the hand, then the hand, then on top of, then on the table, each group sorted.
_BELIEVED_RANK = {"clear": 1, "in the hand": 1, "handempty": 2, "holding": 2, "on": 3, "ontable": 4}


def believed_state_text(facts: State) -> str:
    """A state as RAP's world model words it after a change ("A, B, and C."), so that the next prompt shows
    the model states worded like the ones in its demonstrations."""
    clauses = [(_BELIEVED_RANK[f[0]], FACT_TEXT[f[0]].format(*map(block_text, f[1:]))) for f in facts]
    clauses += [(_BELIEVED_RANK["in the hand"], f"{block_text(f[1])} is in the hand") for f in facts
                if f[0] == "holding"]
    ordered = [text for _, text in sorted(clauses)]
    if not ordered:
        raise ValueError("nothing to describe: no facts")
    return (", ".join([*ordered[:-1], "and " + ordered[-1]]) if len(ordered) > 1 else ordered[0]) + "."


def change_text(op: Op) -> str:
    """The ``[CHANGE]`` sentence of RAP's world-model prompts for one action: what it makes true and false."""
    held = block_text(op[1])
    other = block_text(op[2]) if len(op) > 2 else None
    if op[0] in ("pick-up", "unstack"):
        place = f"on top of {other}" if other else "on the table"
        clauses = [f"the hand was empty and is now holding {held}", f"{held} was {place} and is now in the hand",
                   f"{held} is no longer clear", *([f"{other} is now clear"] if other else [])]
    elif op[0] in ("put-down", "stack"):
        place = f"on top of {other}" if other else "on the table"
        clauses = [f"the hand was holding {held} and is now empty", f"{held} was in the hand and is now {place}",
                   *([f"{other} is no longer clear"] if other else []), f"{held} is now clear"]
    else:
        raise ValueError(f"not a blocksworld-4ops action: {format_atom(op)}")
    return (", ".join(clauses[:-1]) + ", and " + clauses[-1] + ".").capitalize()


def action_text(op: Op) -> str:
    if op[0] not in ACTION_TEXT or ACTION_TEXT[op[0]].count("{}") != len(op) - 1:
        raise ValueError(f"not a blocksworld-4ops action: {format_atom(op)}")
    return ACTION_TEXT[op[0]].format(*map(block_text, op[1:]))


def parse_action(text: str) -> Op:
    """The operator of an English action; case, surrounding space and one trailing period are forgiven."""
    if not isinstance(text, str):
        raise ValueError(f"an action is a string, got {text!r}")
    cleaned = text.strip().lower()
    cleaned = cleaned[:-1].rstrip() if cleaned.endswith(".") else cleaned
    for name, pattern in _ACTION_RE.items():
        match = pattern.fullmatch(cleaned)
        if match:
            unknown = [c for c in match.groups() if c not in BLOCK_OF]
            if unknown:
                raise ValueError(f"unknown block colour {', '.join(unknown)} in action {text!r}")
            return (name, *(BLOCK_OF[c] for c in match.groups()))
    raise ValueError(f"not a Blocksworld action: {text!r} (expected e.g. 'pick up the red block', "
                     "'unstack the red block from on top of the blue block', 'put down the red block', "
                     "'stack the red block on top of the blue block')")


def apply_text(state: State, text: str) -> tuple[Op, State]:
    """Parse and apply an English action; a failure is a ValueError that says why in English."""
    op = parse_action(text)
    try:
        return op, apply(state, op)
    except NotApplicable as exc:
        raise ValueError(f"cannot {action_text(op)}: it needs that {facts_text(exc.missing)}") from None
    except ValueError as exc:
        raise ValueError(f"cannot {action_text(op)}: {exc}") from None

