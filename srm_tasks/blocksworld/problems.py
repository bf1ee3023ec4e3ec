"""Problems as JSON dicts: checking them, validating plans, telling them apart, and making new ones.

A problem is ``{"id", "init", "goal", "optimal_length", "gold_plan"}`` with facts as sorted atom
strings and the gold plan in RAP's English. ``canonical_key`` names a problem up to renaming of
its blocks, because the public set repeats problems under other block names and training and
evaluation problems must be kept apart by structure, not by file.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Iterator, Sequence
from itertools import count, islice, permutations, product
from typing import Any

from srm_tasks.blocksworld.english import COLOURS, action_text, apply_text
from srm_tasks.blocksworld.distances import GRAPH_BLOCKS, optimal_plan
from srm_tasks.blocksworld.world import Fact, State, check_fact, check_state, format_atom, objects_of, parse_atom, solve

MAX_ORDERINGS = 100_000  # canonical_key enumerates orderings of equally tall towers; beyond this it refuses


def fact_strings(facts: Iterable[Fact]) -> list[str]:
    return [format_atom(f) for f in sorted(facts)]


def make_problem(problem_id: str, init: State, goal: State, *, optimal_length: int | None = None,
                 gold_plan: list[str] | None = None) -> dict[str, Any]:
    return {"id": problem_id, "init": fact_strings(init), "goal": fact_strings(goal),
            "optimal_length": optimal_length, "gold_plan": gold_plan}


def problem_facts(problem: Any) -> tuple[State, State]:
    """The checked initial state and goal of a problem dict; a malformed problem is a ValueError."""
    if not (isinstance(problem, dict) and isinstance(problem.get("init"), list)
            and isinstance(problem.get("goal"), list)):
        raise ValueError(f"a blocksworld problem is a dict with 'init' and 'goal' lists of atoms like "
                         f"'(on a b)', got {problem!r:.200}")
    name = problem.get("id", "?")
    try:
        init = frozenset(check_fact(parse_atom(f)) for f in problem["init"])
        goal = frozenset(check_fact(parse_atom(f)) for f in problem["goal"])
        check_state(init)
        if not goal:
            raise ValueError("the goal is empty")
        strangers = set(objects_of(goal)) - set(objects_of(init))
        if strangers:
            raise ValueError(f"the goal names blocks not in the initial state: {', '.join(sorted(strangers))}")
    except ValueError as exc:
        raise ValueError(f"problem {name}: {exc}") from None
    return init, goal


def validate_plan(problem: dict[str, Any], plan: Sequence[str]) -> tuple[bool, bool, str | None]:
    """(every action parses and applies, the goal holds at the end, why not) for English actions.

    The error names the failing action by its 0-based index, as ``plan[3]``.
    """
    if isinstance(plan, str) or not isinstance(plan, Sequence):
        raise TypeError(f"a plan is a sequence of action strings, got {type(plan).__name__}")
    state, goal = problem_facts(problem)
    for i, text in enumerate(plan):
        try:
            _, state = apply_text(state, text)
        except ValueError as exc:
            return False, False, f"plan[{i}] {text!r}: {exc}"
    return True, goal <= state, None


def _towers(init: State) -> tuple[list[str], list[list[str]]]:
    """The held block (if any) and the towers of ``init``, each listed bottom to top."""
    above = {f[2]: f[1] for f in init if f[0] == "on"}
    towers = []
    for bottom in sorted(f[1] for f in init if f[0] == "ontable"):
        towers.append([bottom])
        while towers[-1][-1] in above:
            towers[-1].append(above[towers[-1][-1]])
    return [f[1] for f in init if f[0] == "holding"], towers


def canonical_key(problem: dict[str, Any]) -> str:
    """A string equal for two problems exactly when one is the other with its blocks renamed.

    Blocks are relabelled by their place in the initial towers; the only freedom left is the
    order of equally tall towers, over which the smallest relabelled goal is taken.
    """
    init, goal = problem_facts(problem)
    held, towers = _towers(init)
    heights = sorted({len(t) for t in towers})
    groups = [[t for t in towers if len(t) == h] for h in heights]
    if math.prod(math.factorial(len(g)) for g in groups) > MAX_ORDERINGS:
        raise ValueError(f"problem {problem.get('id', '?')}: too many interchangeable towers to canonicalise")

    def relabelled(ordering: tuple[tuple[list[str], ...], ...]) -> tuple[list[str], ...]:
        blocks = held + [b for group in ordering for tower in group for b in tower]
        label = {b: f"b{i}" for i, b in enumerate(blocks)}
        return tuple(sorted(format_atom((f[0], *(label[a] for a in f[1:]))) for f in facts) for facts in (init, goal))

    best = min(map(relabelled, product(*(permutations(g) for g in groups))))
    return f"init {' '.join(best[0])} goal {' '.join(best[1])}"


def _random_state(blocks: list[str], rng: random.Random) -> State:
    """Blocks shuffled into towers with random cuts, hand empty."""
    order = rng.sample(blocks, len(blocks))
    facts: set[Fact] = {("handempty",), ("ontable", order[0])}
    for lower, upper in zip(order, order[1:]):
        facts.add(("ontable", upper) if rng.random() < 0.5 else ("on", upper, lower))
    supports = {f[2] for f in facts if f[0] == "on"}
    return frozenset(facts | {("clear", b) for b in blocks if b not in supports})


def generate_problems(n: int, blocks: tuple[int, int] = (4, 6), seed: int = 0,
                      steps: tuple[int, int] | None = None) -> list[dict[str, Any]]:
    """``n`` distinct random solvable problems with ``blocks[0]..blocks[1]`` blocks (inclusive),
    and, with ``steps``, an optimal plan of ``steps[0]..steps[1]`` actions (as RAP splits by steps).

    Goals are random non-empty sets of "on" facts of a random target arrangement, not already
    true at the start (as PlanBench's goals). Optimal lengths and gold plans come from
    the shared state graph up to 7 blocks (``distances``), breadth-first search beyond. Ids hash the canonical key, so one problem
    has one id in every batch. The first ``n`` problems of a seed are the same whatever ``n`` is.
    """
    problems = list(islice(problem_stream(blocks, seed, steps, attempts=(1000 + 100 * n)
                                          * (1 if steps is None else 10)), n))
    if len(problems) < n:
        raise ValueError(f"made only {len(problems)} distinct problems of {n} with {blocks} blocks"
                         + ("" if steps is None else f" and {steps} steps"))
    return problems


def problem_stream(blocks: tuple[int, int] = (4, 6), seed: int = 0, steps: tuple[int, int] | None = None, *,
                   attempts: int | None = None) -> Iterator[dict[str, Any]]:
    """The problems of ``generate_problems`` one at a time, for a caller that skips some and takes what it
    needs (each costs a planner call); ``attempts`` bounds the random draws (None: no bound)."""
    low, high = blocks
    if not 2 <= low <= high <= len(COLOURS):
        raise ValueError(f"blocks must be (low, high) with 2 <= low <= high <= {len(COLOURS)}, got {blocks!r}")
    if steps is not None and not 1 <= steps[0] <= steps[1]:
        raise ValueError(f"steps must be (low, high) with 1 <= low <= high, got {steps!r}")
    return _stream(blocks, seed, steps, attempts)


def _stream(blocks: tuple[int, int], seed: int, steps: tuple[int, int] | None,
            attempts: int | None) -> Iterator[dict[str, Any]]:
    low, high = blocks
    rng = random.Random(seed)
    seen: set[str] = set()
    for _ in count() if attempts is None else range(attempts):
        names = list(COLOURS)[: rng.randint(low, high)]
        init = _random_state(names, rng)
        on_facts = sorted(f for f in _random_state(names, rng) if f[0] == "on")
        if not on_facts:
            continue
        goal = frozenset(rng.sample(on_facts, rng.randint(1, len(on_facts))))
        if goal <= init:
            continue
        draft = make_problem("draft", init, goal)
        key = canonical_key(draft)
        if key in seen:
            continue
        seen.add(key)
        plan = optimal_plan(init, goal) if len(names) <= GRAPH_BLOCKS else solve(init, goal)
        assert plan is not None, "a goal taken from a possible arrangement is always reachable"
        if steps is not None and not steps[0] <= len(plan) <= steps[1]:
            continue
        draft.update(id="gen-" + hashlib.sha256(key.encode()).hexdigest()[:12], optimal_length=len(plan),
                     gold_plan=[action_text(op) for op in plan])
        yield draft


def _range_arg(text: str, what: str, low: int, high: int) -> tuple[int, int]:
    import argparse

    lo, _, hi = text.partition("-")
    try:
        pair = (int(lo), int(hi or lo))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected N or N-M, got {text!r}") from None
    if not low <= pair[0] <= pair[1] <= high:
        raise argparse.ArgumentTypeError(f"{what} must satisfy {low} <= N <= M <= {high}, got {text!r}")
    return pair


def block_range_arg(text: str) -> tuple[int, int]:
    """``"N"`` or ``"N-M"`` block counts for the generator, as an argparse type."""
    return _range_arg(text, "block counts", 2, len(COLOURS))


def steps_range_arg(text: str) -> tuple[int, int]:
    """``"N"`` or ``"N-M"`` optimal plan lengths for the generator, as an argparse type."""
    return _range_arg(text, "plan lengths", 1, 2 * len(COLOURS))
