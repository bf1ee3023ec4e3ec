"""Blocksworld in RAP's English: facts, goals and actions rendered and actions parsed back.

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


def arrangement_text(facts: State) -> str:
    """The blocks as stacks, each read top to bottom, and the hand: a compact view of the same facts.

    "the red block on the blue block on the table; the orange block on the table; the hand is empty"
    """
    on = {f[1]: f[2] for f in facts if f[0] == "on"}
    below = set(on.values())
    tops = sorted(b for b in {f[1] for f in facts if f[0] in ("on", "ontable")} if b not in below)
    stacks = []
    for top in tops:
        chain, block = [block_text(top)], top
        while block in on:
            block = on[block]
            chain.append(block_text(block))
        stacks.append(" on ".join(chain) + " on the table")
    held = [f[1] for f in facts if f[0] == "holding"]
    hand = f"the hand is holding {block_text(held[0])}" if held else "the hand is empty"
    return "; ".join([*stacks, hand])


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

