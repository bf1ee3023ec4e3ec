"""How well an SRM ranks Blocksworld actions, on held-out generated states with exact labels.

States come from walks (0 to ``--walk-length`` actions, each a random or an optimal one) from
generated problems, a third of them in each band of distance to the goal, that are not training problems (``--exclude-labels``: the label files a model was trained on) and not
public RAP/PlanBench instances (``--exclude``). Only states whose legal actions differ in value are
kept. An action is optimal when it lowers the optimal distance to the goal (exact, from the state
graph). For each model:

- ``top1``: the share of states where the model's best-scored legal action is an optimal one (when several
  tie for best, the share of optimal ones among them); ``random`` beside it is what a uniform pick scores on the
  same states;
- ``pair_acc``: optimal vs non-optimal sibling pairs ranked right (ties count one half); ``same_verb_pair_acc``
  the same over the pairs of one verb (stack X on Y vs stack X on Z), which a judge can only rank by reading which
  block goes where: 0.5 for a judge that reads only the verb;
- ``auroc``: optimal vs non-optimal actions over all states;
- the same ``top1`` per distance to the goal (≤2, 3–5, ≥6 actions) and per block count.

The table's control rows: a random pick, and the best judge that reads only the verb (each verb scored by the share
of its actions that are optimal, fitted on these very states): what a model has learnt beyond the kind of move shows
as the distance above that row.

``python -m trainer.evaluate_srm --srm untrained=embedded --srm shipped=srm_agent/checkpoints/blocksworld-srm``
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from srm_agent.console import HelpFormatter, named_path, run_command
from srm_agent.errors import SRMAgentError
from srm_agent.fsio import atomic_write_text

from srm_tasks.blocksworld import BlocksworldTask, block_range_arg, canonical_key
from srm_tasks.blocksworld.distances import blocks_of, distance, optimal_actions
from srm_tasks.blocksworld.english import action_text
from srm_tasks.blocksworld.problems import generate_problems, problem_facts
from srm_tasks.blocksworld.world import State, apply, legal_ops, parse_atom
from trainer.blocksworld_labels import excluded_keys
from trainer.metrics import auroc, pairwise_accuracy

DISTANCE_BANDS = (("<=2", 0, 2), ("3-5", 3, 5), (">=6", 6, 10**6))
VERB_ONLY = "verb only (fitted on these states)"


def held_out_states(n: int, *, blocks: tuple[int, int], walk_length: int, seed: int,
                    exclude: set[str]) -> list[dict[str, Any]]:
    """``n`` distinct states (one per problem) whose legal actions differ in value, with exact labels, a
    third in each band of distance to the goal (≤2, 3–5, ≥6 actions).

    A walk of 0 to ``walk_length`` actions takes an optimal action with a probability drawn per walk (0 to 1),
    so states near the goal, which purely random walks seldom reach, are sampled too.
    """
    task = BlocksworldTask()
    rng = random.Random(seed)
    names = [name for name, _, _ in DISTANCE_BANDS]
    quota = {name: n // len(names) for name in names}
    quota[names[-1]] += n - sum(quota.values())
    states: list[dict[str, Any]] = []
    for problem in generate_problems(20 * n, blocks=blocks, seed=seed):
        if len(states) == n:
            break
        if canonical_key(problem) in exclude:
            continue
        _, goal = problem_facts(problem)
        state, greedy = task.initial_state(problem), rng.random()
        for _ in range(rng.randint(0, walk_length)):
            facts: State = frozenset(parse_atom(s) for s in state["facts"])
            if goal <= facts:
                break
            ops = optimal_actions(facts, goal) if rng.random() < greedy else legal_ops(facts)
            state = task.step(state, action_text(rng.choice(ops)))
        facts = frozenset(parse_atom(s) for s in state["facts"])
        if goal <= facts:
            continue
        ops = legal_ops(facts)
        good = set(optimal_actions(facts, goal))
        if len(good) == len(ops):
            continue  # every action is as good as any other: nothing to rank
        d = distance(facts, goal)
        band = next(name for name, lo, hi in DISTANCE_BANDS if lo <= d <= hi)
        if quota[band] <= 0:
            continue
        quota[band] -= 1
        states.append({"text": task.describe(state), "actions": [action_text(op) for op in ops],
                       "verbs": [op[0] for op in ops], "optimal": [op in good for op in ops], "distance": d,
                       "blocks": len(blocks_of(facts))})
    if len(states) < n:
        raise ValueError(f"found only {len(states)} held-out states of {n}; widen --blocks or lower --states")
    return states


def ranking_quality(scores: Sequence[Sequence[float]], states: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``top1``, ``random``, ``pair_acc``, ``same_verb_pair_acc``, ``auroc`` and ``top1`` per distance band and
    block count."""
    hits, chance, flat, labels = [], [], [], []
    pairs: dict[bool, tuple[list[float], list[float]]] = {False: ([], []), True: ([], [])}  # same verb? -> pos, neg
    for s, st in zip(scores, states):
        top = max(s)
        tied = [good for x, good in zip(s, st["optimal"]) if x == top]
        hits.append(sum(tied) / len(tied))
        chance.append(sum(st["optimal"]) / len(st["optimal"]))
        for i, good in enumerate(st["optimal"]):
            flat.append(s[i])
            labels.append(1.0 if good else 0.0)
            if good:
                for j, other in enumerate(st["optimal"]):
                    if not other:
                        pos, neg = pairs[st["verbs"][i] == st["verbs"][j]]
                        pos.append(s[i])
                        neg.append(s[j])
    out: dict[str, Any] = {"states": len(states), "top1": sum(hits) / len(hits), "random": sum(chance) / len(chance),
                           "pair_acc": pairwise_accuracy(pairs[False][0] + pairs[True][0],
                                                         pairs[False][1] + pairs[True][1]),
                           "same_verb_pair_acc": pairwise_accuracy(*pairs[True]), "same_verb_pairs": len(pairs[True][0]),
                           "auroc": auroc(flat, labels)}
    groups: dict[str, list[float]] = defaultdict(list)
    for hit, st in zip(hits, states):
        band = next(name for name, lo, hi in DISTANCE_BANDS if lo <= st["distance"] <= hi)
        groups[f"distance {band}"].append(hit)
        groups[f"{st['blocks']} blocks"].append(hit)
    out["top1_by"] = {k: {"top1": sum(v) / len(v), "states": len(v)} for k, v in sorted(groups.items())}
    return out


def verb_only_scores(states: Sequence[dict[str, Any]]) -> list[list[float]]:
    """Each action scored by the share of optimal actions among all actions of its verb in ``states``: the best
    ranking a judge that reads only the verb can give these states (fitted on them, so an upper bound for it)."""
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for st in states:
        for verb, good in zip(st["verbs"], st["optimal"]):
            counts[verb][0] += good
            counts[verb][1] += 1
    return [[counts[verb][0] / counts[verb][1] for verb in st["verbs"]] for st in states]


def _load(spec: str):
    from srm_agent.srm import SpeculativeRewardModel, encoder_path

    return SpeculativeRewardModel.from_pretrained(encoder_path(spec), device="cpu")


def table(results: dict[str, dict[str, Any]]) -> str:
    """A Markdown table: one row per model, overall then ``top1`` per distance band and block count."""
    bands = [f"distance {name}" for name, _, _ in DISTANCE_BANDS]
    keys = sorted({k for r in results.values() for k in r["top1_by"]},
                  key=lambda k: (bands.index(k) if k in bands else len(bands), k))
    first = next(iter(results.values()))
    head = ["model", "top-1 optimal", "pairwise acc", "same-verb pairwise acc", "AUROC",
            *[f"top-1, {k} (n={first['top1_by'][k]['states']})" for k in keys]]
    rows = [head, ["---"] * len(head),
            ["random pick", f"{first['random']:.2f}", "0.50", "0.50", "0.50", *[""] * len(keys)]]

    def cell(value: float | None) -> str:
        return "–" if value is None else f"{value:.2f}"

    for name, r in results.items():
        rows.append([name, cell(r["top1"]), cell(r["pair_acc"]), cell(r.get("same_verb_pair_acc")), cell(r["auroc"]),
                     *[cell(r["top1_by"][k]["top1"]) for k in keys]])
    return "\n".join("| " + " | ".join(row) + " |" for row in rows)


def evaluate(args: argparse.Namespace) -> None:
    exclude = excluded_keys(args.exclude)
    for path in args.exclude_labels:
        with open(path, encoding="utf-8") as f:
            # a group is the problem's canonical key, with "|verb" when pairs were kept within a verb
            exclude |= {json.loads(line)["group"].split("|")[0] for line in f if line.strip()}
    states = held_out_states(args.states, blocks=args.blocks, walk_length=args.walk_length, seed=args.seed,
                             exclude=exclude)
    results: dict[str, dict[str, Any]] = {VERB_ONLY: {"path": None, **ranking_quality(verb_only_scores(states),
                                                                                     states)}}
    for name, spec in tqdm(args.srm, desc="models", unit="model"):
        srm = _load(spec)
        flat = srm.score_pairs([(st["text"], a) for st in states for a in st["actions"]])
        scores, start = [], 0
        for st in states:
            scores.append(flat[start:start + len(st["actions"])])
            start += len(st["actions"])
        results[name] = {"path": spec, **ranking_quality(scores, states)}
    print(table(results))
    if args.out:
        payload = {"states": args.states, "blocks": list(args.blocks), "walk_length": args.walk_length,
                   "seed": args.seed, "results": results}
        print(f"-> {atomic_write_text(args.out, json.dumps(payload, indent=2) + chr(10))}", file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.evaluate_srm", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("--srm", action="append", type=named_path, required=True, metavar="NAME=PATH",
                        help="a model to evaluate ('embedded': the untrained head on the embedded MiniLM); repeatable")
    parser.add_argument("--states", type=int, default=600, help="held-out states (one per problem)")
    parser.add_argument("--blocks", type=block_range_arg, default=(4, 6), help="N or N-M blocks")
    parser.add_argument("--walk-length", type=int, default=8, help="longest random walk from a problem's start")
    parser.add_argument("--seed", type=int, default=1000, help="seeds the problems and walks (not a training seed)")
    parser.add_argument("--exclude", action="append", default=[], metavar="SPLIT_JSON",
                        help="RAP split files whose problems are left out (repeatable)")
    parser.add_argument("--exclude-labels", action="append", default=[], type=Path, metavar="JSONL",
                        help="label files a model was trained on: their problems are left out (repeatable)")
    parser.add_argument("--out", default=None, help="also write the figures as JSON here")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.states < 1 or args.walk_length < 0:
        parser.error("--states must be >= 1 and --walk-length >= 0")
    return run_command(lambda: evaluate(args), debug=args.debug, usage_errors=(ValueError, SRMAgentError))


if __name__ == "__main__":
    sys.exit(main())
