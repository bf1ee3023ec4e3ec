"""Blocksworld process labels for the SRM: weak ones that need no planner, exact ones for an oracle.

- ``weak`` (stage 1, the cheap and noisy kind the paper relies on): an action that makes an
  unmet goal fact true is good (1), one that breaks a met goal fact is bad (0), the rest are
  neutral (0.5, like PRM800K's 0 rating).
- ``exact`` (privileged: only for the oracle-labelled upper bound): 1 if the action lowers the
  optimal distance to the goal (breadth-first search, up to ~6 blocks), else 0.

States are visited by seeded random legal walks from each training problem and rendered with
``BlocksworldTask.describe``, exactly as the search graph shows them to the SRM. Training
problems are generated, and any problem equal to an excluded one up to renaming of blocks
(``canonical_key``) is dropped, so evaluation instances never leak into training.

``python -m trainer.blocksworld_labels --problems 200 --out bw_labels.jsonl`` writes step
records (``{context, step, label, group, source}``) that ``trainer.train_srm --data`` reads.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections.abc import Iterable, Sequence
from itertools import islice
from pathlib import Path
from typing import Any

from tqdm import tqdm

from srm_agent.console import HelpFormatter, positive_int, run_command
from srm_agent.fsio import atomic_write_text

from srm_tasks.blocksworld import BlocksworldTask, block_range_arg, canonical_key, load_split
from srm_tasks.blocksworld.english import action_text
from srm_tasks.blocksworld.problems import problem_facts, problem_stream
from srm_tasks.blocksworld.distances import distance, optimal_actions
from srm_tasks.blocksworld.world import Op, State, apply, legal_ops, parse_atom

LABELLERS = ("weak", "exact")
# Which actions of a state form training pairs: all of them, or only those of one verb (stack X on Y vs stack X
# on Z), which a model can only rank by reading the blocks, not by the verb alone.
SIBLINGS = ("state", "verb")


def weak_label(facts: State, op: Op, goal: State) -> float:
    """1 if ``op`` makes an unmet goal fact true, 0 if it breaks a met one, else 0.5."""
    after = apply(facts, op)
    if any(g in after and g not in facts for g in goal):
        return 1.0
    if any(g in facts and g not in after for g in goal):
        return 0.0
    return 0.5


def exact_label(facts: State, op: Op, goal: State) -> float:
    """1 if ``op`` lowers the optimal distance to the goal, else 0 (a planner's process label)."""
    return 1.0 if distance(apply(facts, op), goal) < distance(facts, goal) else 0.0


def excluded_keys(split_files: Iterable[str | Path]) -> set[str]:
    """Canonical keys of every problem in the given RAP split files (the evaluation instances)."""
    return {canonical_key(p) for path in split_files for p in load_split(path)}


def training_problems(n: int, blocks: tuple[int, int], seed: int, exclude: set[str]) -> list[dict[str, Any]]:
    """The first ``n`` generated problems none of which equals an excluded one up to renaming of blocks."""
    kept = list(islice((p for p in problem_stream(blocks, seed, attempts=1000 + 400 * n)
                        if canonical_key(p) not in exclude), n))
    if len(kept) < n:
        raise ValueError(f"cannot find {n} problems with {blocks[0]}-{blocks[1]} blocks outside the excluded set")
    return kept


def label_records(problems: Sequence[dict[str, Any]], *, labeller: str = "weak", walks: int = 4,
                  walk_length: int = 6, seed: int = 0, optimal_share: float = 0.0, siblings: str = "state",
                  max_distance: int | None = None, progress: bool = True) -> list[dict[str, Any]]:
    """Step records for every legal action in the states of random walks from each problem.

    With ``optimal_share`` > 0 a walk takes an optimal action that often (a planner's view), so the
    states near the goal, which random walks seldom reach, are labelled too. ``max_distance`` keeps only the
    states within that many optimal moves of the goal (the walks still pass through the others): the last moves
    of a plan, where a judge must read which block goes where rather than which verb comes next.
    """
    if not 0.0 <= optimal_share <= 1.0:
        raise ValueError(f"optimal_share must be in [0, 1], got {optimal_share!r}")
    if siblings not in SIBLINGS:
        raise ValueError(f"siblings must be one of {', '.join(SIBLINGS)}, got {siblings!r}")
    if labeller not in LABELLERS:
        raise ValueError(f"labeller must be one of {', '.join(LABELLERS)}, got {labeller!r}")
    label = weak_label if labeller == "weak" else exact_label
    task = BlocksworldTask()
    rng = random.Random(seed)
    records: list[dict[str, Any]] = []
    for problem in tqdm(problems, desc=f"{labeller} labels", unit="problem", disable=not progress):
        group = canonical_key(problem)
        _, goal = problem_facts(problem)
        seen: set[State] = set()
        for _ in range(walks):
            state = task.initial_state(problem)
            for _ in range(walk_length):
                facts: State = frozenset(parse_atom(s) for s in state["facts"])
                if goal <= facts:
                    break
                ops = legal_ops(facts)
                if facts not in seen:
                    seen.add(facts)
                    if max_distance is None or distance(facts, goal) <= max_distance:
                        context = task.describe(state)
                        records.extend({"context": context, "step": action_text(op), "label": label(facts, op, goal),
                                        "group": group if siblings == "state" else f"{group}|{op[0]}",
                                        "source": f"blocksworld-{labeller}"} for op in ops)
                if rng.random() < optimal_share:
                    ops = optimal_actions(facts, goal)
                state = task.step(state, action_text(rng.choice(ops)))
    return records


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.blocksworld_labels", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--problems", type=int, default=200, help="generated training problems")
    parser.add_argument("--blocks", type=block_range_arg, default=(4, 6), help="N or N-M blocks")
    parser.add_argument("--labeller", choices=LABELLERS, default="weak", help="how steps are labelled (see above)")
    parser.add_argument("--walks", type=int, default=4, help="random walks per problem")
    parser.add_argument("--walk-length", type=int, default=6, help="steps per random walk")
    parser.add_argument("--optimal-share", type=float, default=0.0,
                        help="how often a walk takes an optimal action instead of a random one (reaches states near "
                             "the goal)")
    parser.add_argument("--siblings", choices=SIBLINGS, default="state",
                        help="pair the actions of a state with each other, or only those of the same verb (the "
                             "record's group gets the verb, so pairs never cross it)")
    parser.add_argument("--max-distance", type=positive_int, default=None, metavar="D",
                        help="label only the states within D optimal moves of the goal (the end of a plan)")
    parser.add_argument("--exclude", action="append", default=[], metavar="SPLIT_JSON",
                        help="RAP split files whose problems must not be trained on (repeatable)")
    parser.add_argument("--seed", type=int, default=0, help="seeds problem generation and the walks")
    parser.add_argument("--out", required=True, help="step-record JSONL to write")
    args = parser.parse_args(argv)
    return run_command(lambda: write_labels(args), debug=False, usage_errors=(ValueError, OSError))


def write_labels(args: argparse.Namespace) -> None:
    problems = training_problems(args.problems, args.blocks, args.seed, excluded_keys(args.exclude))
    records = label_records(problems, labeller=args.labeller, walks=args.walks, walk_length=args.walk_length,
                            seed=args.seed, optimal_share=args.optimal_share, siblings=args.siblings,
                            max_distance=args.max_distance)
    out = atomic_write_text(args.out, "".join(json.dumps(r) + "\n" for r in records))
    counts = {v: sum(r["label"] == v for r in records) for v in (0.0, 0.5, 1.0)}
    print(f"{len(records)} step records from {len(problems)} problems (labels 0/0.5/1: {counts[0.0]}/"
          f"{counts[0.5]}/{counts[1.0]}) -> {out}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
