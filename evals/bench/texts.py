"""Benchmark inputs from the real Blocksworld domain (``srm_tasks.blocksworld``), seeded.

The SRM is timed on what it reads in a search, ``BlocksworldTask.describe(state)`` with one of
the state's legal actions, at states reached by random legal walks from generated problems. The
generator is timed on ``BlocksworldTask.prompt(state)`` (the few-shot plan prompt of the built-in
pool, or of a RAP pool file): prompts of different problems share the pool's few-shot part, as
the prompts of one evaluation do.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from srm_tasks.blocksworld import BlocksworldTask, generate_problems

SRM_BLOCKS = (4, 7)  # 4-7 blocks and walks of up to 10 steps: states of about 100-230 MiniLM tokens
PROMPT_BLOCKS = (4, 6)
MAX_WALK = 10
PROBLEMS = 16


def _walk(task: BlocksworldTask, problem: dict[str, Any], rng: random.Random, steps: int) -> dict[str, Any]:
    """The state after ``steps`` random legal actions from the problem's start."""
    state = task.initial_state(problem)
    for _ in range(steps):
        state = task.step(state, rng.choice(task.legal_actions(state)))
    return state


def srm_pairs(n_pairs: int, seed: int, *, blocks: tuple[int, int] = SRM_BLOCKS, max_walk: int = MAX_WALK
              ) -> tuple[list[tuple[str, str]], int]:
    """``n_pairs`` shuffled (state text, legal action) pairs, 1-4 actions per state; and the state count."""
    task, rng = BlocksworldTask(), random.Random(seed)
    problems = generate_problems(min(PROBLEMS, n_pairs), blocks=blocks, seed=seed)
    pairs: list[tuple[str, str]] = []
    n_states = 0
    while len(pairs) < n_pairs:
        state = _walk(task, rng.choice(problems), rng, rng.randint(0, max_walk))
        legal = task.legal_actions(state) or []
        n_states += 1
        take = min(len(legal), rng.randint(1, 4), n_pairs - len(pairs))
        pairs += [(task.describe(state), action) for action in rng.sample(legal, take)]
    rng.shuffle(pairs)
    return pairs, n_states


def nearby_actions(task: BlocksworldTask, state: dict[str, Any], k: int) -> list[str]:
    """``k`` distinct actions: the state's legal ones first, then those legal a few moves away (breadth-first)."""
    actions: dict[str, None] = {}
    frontier, seen = [state], set()
    while frontier and len(actions) < k:
        current = frontier.pop(0)
        key = tuple(current["facts"])
        if key in seen:
            continue
        seen.add(key)
        for action in task.legal_actions(current) or []:
            actions.setdefault(action)
            frontier.append(task.step(current, action))
    if len(actions) < k:
        raise ValueError(f"only {len(actions)} distinct actions exist for these blocks; ask for K <= {len(actions)}")
    return list(actions)[:k]


def plan_prompts(n_prompts: int, k: int, seed: int, *, pool: str | Path | None = None, n_shots: int | None = None,
                 blocks: tuple[int, int] = PROMPT_BLOCKS) -> tuple[list[str], list[str]]:
    """Plan prompts of ``n_prompts`` different problems (a few steps in) and ``k`` choices for the first.

    The choices are the first prompt's next actions: its legal ones, then actions legal a few
    moves away, as a generator scoring K candidate actions would be asked.
    """
    task, rng = BlocksworldTask(pool, n_shots), random.Random(seed)
    states = [_walk(task, problem, rng, rng.randint(0, 3))
              for problem in generate_problems(n_prompts, blocks=blocks, seed=seed)]
    return [task.prompt(s) for s in states], nearby_actions(task, states[0], k)
