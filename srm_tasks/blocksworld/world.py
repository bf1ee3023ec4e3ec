"""The 4-operator Blocksworld (PlanBench's ``blocksworld-4ops``) as plain STRIPS over fact tuples.

Facts are tuples such as ``("on", "a", "b")``, states are frozensets of facts and actions are
tuples such as ``("stack", "a", "b")``. ``OPERATORS`` restates generated_domain.pddl as data so
that the tests can compare it with the file; ``legal_ops`` is a fast enumerator that the tests
compare with trying every ground action. Problems and states travel as sorted fact strings
(``"(on a b)"``) because the search graph keeps its state as JSON.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable

Fact = tuple[str, ...]
Op = tuple[str, ...]
State = frozenset[Fact]

PREDICATES = {"clear": 1, "ontable": 1, "handempty": 0, "holding": 1, "on": 2}

# name -> (parameters, preconditions, add effects, delete effects), exactly as in generated_domain.pddl
OPERATORS: dict[str, tuple[tuple[str, ...], tuple[Fact, ...], tuple[Fact, ...], tuple[Fact, ...]]] = {
    "pick-up": (("?ob",),
                (("clear", "?ob"), ("ontable", "?ob"), ("handempty",)),
                (("holding", "?ob"),),
                (("clear", "?ob"), ("ontable", "?ob"), ("handempty",))),
    "put-down": (("?ob",),
                 (("holding", "?ob"),),
                 (("clear", "?ob"), ("handempty",), ("ontable", "?ob")),
                 (("holding", "?ob"),)),
    "stack": (("?ob", "?underob"),
              (("clear", "?underob"), ("holding", "?ob")),
              (("handempty",), ("clear", "?ob"), ("on", "?ob", "?underob")),
              (("clear", "?underob"), ("holding", "?ob"))),
    "unstack": (("?ob", "?underob"),
                (("on", "?ob", "?underob"), ("clear", "?ob"), ("handempty",)),
                (("holding", "?ob"), ("clear", "?underob")),
                (("on", "?ob", "?underob"), ("clear", "?ob"), ("handempty",))),
}

_ATOM = re.compile(r"\(([a-z][a-z0-9_-]*)((?: [a-z0-9_-]+)*)\)")


class NotApplicable(ValueError):
    """An action whose preconditions do not hold; ``missing`` lets callers explain it in English."""

    def __init__(self, op: Op, missing: list[Fact]) -> None:
        super().__init__(f"{format_atom(op)} needs {' '.join(format_atom(f) for f in missing)}")
        self.op, self.missing = op, missing


def format_atom(atom: Fact | Op) -> str:
    return "(" + " ".join(atom) + ")"


def parse_atom(text: str) -> tuple[str, ...]:
    """``"(on a b)"`` -> ``("on", "a", "b")``: the one spelling that problems, states and gold plans use."""
    match = _ATOM.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an atom like '(on a b)': {text!r}")
    return (match[1], *match[2].split())


def check_fact(fact: Fact) -> Fact:
    if PREDICATES.get(fact[0]) != len(fact) - 1:
        raise ValueError(f"unknown predicate or wrong arity: {format_atom(fact)} "
                         f"(blocksworld-4ops has {', '.join(f'{p}/{n}' for p, n in PREDICATES.items())})")
    return fact


def ground(op: Op) -> tuple[tuple[Fact, ...], tuple[Fact, ...], tuple[Fact, ...]]:
    """Preconditions, add and delete effects of one ground action."""
    if op[0] not in OPERATORS or len(OPERATORS[op[0]][0]) != len(op) - 1:
        raise ValueError(f"unknown action or wrong arity: {format_atom(op)}")
    params, pre, add, delete = OPERATORS[op[0]]
    binding = dict(zip(params, op[1:]))

    def bind(facts: tuple[Fact, ...]) -> tuple[Fact, ...]:
        return tuple((f[0], *(binding[a] for a in f[1:])) for f in facts)

    return bind(pre), bind(add), bind(delete)


def objects_of(facts: Iterable[Fact]) -> list[str]:
    return sorted({arg for fact in facts for arg in fact[1:]})


def apply(state: State, op: Op) -> State:
    """The successor state; raises NotApplicable (a ValueError) when a precondition fails."""
    pre, add, delete = ground(op)
    blocks = {arg for fact in state for arg in fact[1:]}
    unknown = [arg for arg in op[1:] if arg not in blocks]
    if unknown:
        raise ValueError(f"{format_atom(op)}: no block {', '.join(unknown)} in this problem")
    missing = [f for f in pre if f not in state]
    if missing:
        raise NotApplicable(op, missing)
    return (state - set(delete)) | set(add)


def legal_ops(state: State) -> list[Op]:
    """Every applicable action of a consistent state, in a stable order (by block, then target)."""
    clear = sorted(f[1] for f in state if f[0] == "clear")
    if ("handempty",) in state:
        below = {f[1]: f[2] for f in state if f[0] == "on"}
        return [("pick-up", b) if ("ontable", b) in state else ("unstack", b, below[b]) for b in clear]
    held = [f[1] for f in state if f[0] == "holding"]
    return [op for b in held for op in [("put-down", b), *(("stack", b, t) for t in clear)]]


def check_state(state: State) -> None:
    """Raise ValueError unless ``state`` is a physically possible arrangement with its derived facts right."""
    for fact in state:
        check_fact(fact)
    place: dict[str, Fact] = {}
    for fact in sorted(state):
        if fact[0] in ("on", "ontable", "holding"):
            if fact[1] in place:
                raise ValueError(f"block {fact[1]} is in two places: {format_atom(place[fact[1]])} "
                                 f"and {format_atom(fact)}")
            place[fact[1]] = fact
    nowhere = [b for b in objects_of(state) if b not in place]
    if nowhere:
        raise ValueError(f"block(s) {', '.join(nowhere)} are neither on the table, on a block nor held")
    held = [b for b, fact in place.items() if fact[0] == "holding"]
    if len(held) > 1 or (("handempty",) in state) == bool(held):
        raise ValueError("the hand must either be empty or hold exactly one block")
    below = {b: fact[2] for b, fact in place.items() if fact[0] == "on"}
    if len(set(below.values())) != len(below) or any(s == b or s in held for b, s in below.items()):
        raise ValueError("a block carries two blocks, or sits on itself or on a held block")
    for b in below:
        seen, cur = [b], below[b]
        while cur in below:
            if cur in seen:
                raise ValueError(f"blocks {', '.join(sorted(seen))} stand on each other in a cycle")
            seen.append(cur)
            cur = below[cur]
    for b in place:
        if (("clear", b) in state) != (b not in below.values() and b not in held):
            raise ValueError(f"(clear {b}) must hold exactly when nothing is on {b} and it is not held")


def solve(init: State, goal: State) -> list[Op] | None:
    """An optimal plan by breadth-first search (None when the goal is unreachable); fine up to ~7 blocks."""
    parents: dict[State, tuple[State, Op] | None] = {init: None}
    queue = deque([init])
    while queue:
        state = queue.popleft()
        if goal <= state:
            plan: list[Op] = []
            while (link := parents[state]) is not None:
                state, op = link
                plan.append(op)
            return plan[::-1]
        for op in legal_ops(state):
            _, add, delete = ground(op)
            nxt = (state - set(delete)) | set(add)
            if nxt not in parents:
                parents[nxt] = (state, op)
                queue.append(nxt)
    return None
