"""Reading the ``[CHANGE]`` sentences of RAP's world-model prompts, and the states they change.

A change is a list of clauses, as llm-reasoners' ``bw_utils.apply_change`` reads them: "the hand was
empty and is now holding the red block" (a fact replaced), "the red block is no longer clear" (one
removed), "the blue block is now clear" (one added). The facts are STRIPS tuples over the colour words
as written ("red", or the pool's own "purple"), so the same reader checks the pool's demonstrations;
"the red block is in the hand" is read as the hand holding it. A clause that cannot be read, or one
that replaces or removes a fact the state does not have, is a ValueError: RAP fails on those too.
"""

from __future__ import annotations

import re

from srm_tasks.blocksworld.world import Fact

_BLOCK = r"the ([a-z]+) block"
_FACTS = ((re.compile(rf"{_BLOCK} is clear"), "clear"), (re.compile(rf"{_BLOCK} is on the table"), "ontable"),
          (re.compile(rf"{_BLOCK} is on top of {_BLOCK}"), "on"), (re.compile(rf"{_BLOCK} is in the hand"), "holding"),
          (re.compile(rf"the hand is holding {_BLOCK}"), "holding"), (re.compile("the hand is empty"), "handempty"))
_CHANGE = re.compile(r"(the hand|the [a-z]+ block) (?:was (?P<old>.+?) and is now (?P<new>.+)"
                     r"|is no longer (?P<gone>.+)|is now (?P<added>.+))")
_SEPARATOR = re.compile(r"\s*,\s*(?:and\s+)?|\s+and\s+(?=the )")


def parse_fact(clause: str) -> Fact:
    """One clause of a state ("the red block is on top of the blue block") as a fact over colour words."""
    text = clause.strip().lower()
    for pattern, predicate in _FACTS:
        match = pattern.fullmatch(text)
        if match:
            return (predicate, *match.groups())
    raise ValueError(f"not a Blocksworld fact: {clause!r}")


def parse_state_text(text: str) -> frozenset[Fact]:
    """A state written as RAP writes one ("I have that, A, B and C."), as a set of facts."""
    body = text.strip().removeprefix("I have that,").strip().rstrip(".")
    return frozenset(parse_fact(clause) for clause in _SEPARATOR.split(body) if clause)


def parse_change(text: str) -> tuple[frozenset[Fact], frozenset[Fact]]:
    """The facts a change sentence removes and those it adds."""
    removed: set[Fact] = set()
    added: set[Fact] = set()
    clauses = [c.strip().removeprefix("and ").strip() for c in text.strip().lower().rstrip(".").split(",")]
    if not any(clauses):
        raise ValueError("no change was written")
    for clause in clauses:
        match = _CHANGE.fullmatch(clause)
        if match is None:
            raise ValueError(f"cannot read the change {clause!r}")
        subject = match[1]
        if match["old"] is not None:
            removed.add(parse_fact(f"{subject} is {match['old']}"))
            added.add(parse_fact(f"{subject} is {match['new']}"))
        elif match["gone"] is not None:
            removed.add(parse_fact(f"{subject} is {match['gone']}"))
        else:
            added.add(parse_fact(f"{subject} is {match['added']}"))
    return frozenset(removed), frozenset(added)


def apply_change(facts: frozenset[Fact], text: str) -> frozenset[Fact]:
    """The state after a change: its removed facts must hold before it (STRIPS order: remove, then add)."""
    removed, added = parse_change(text)
    missing = sorted(removed - facts)
    if missing:
        raise ValueError("the change removes what does not hold: " + ", ".join(" ".join(f) for f in missing))
    return (facts - removed) | added
