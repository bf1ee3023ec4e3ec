"""``python -m trainer.reward_tuning``: RewardTuning data for SRM+ from the search graph's own MCTS.

For each training problem it runs ``graphs.tree_search`` with ``strategy="mcts"`` (the generator
proposes, and the current SRM prunes when ``--srm`` is given; without it, every candidate is kept:
MCTS with no self-evaluation) and writes every explored ``(state, action)`` with its backed-up
value Q in [0, 1] as one JSON line (DESIGN §5)::

    {"state": str, "action": str, "reward": float, "source": str, "visits": int, "problem_id": str}

``state`` is the task's ``describe`` text of the parent node (what the SRM reads when it scores
that action during search), ``reward`` the child's mean backed-up terminal reward, ``visits`` how
many MCTS iterations went through it, ``problem_id`` the split key for ``trainer.train_srm_plus``.
Rows are appended one problem at a time, so ``--resume`` skips problems already in the file (a
problem whose search explored nothing writes no row and is run again). ``--exclude`` keeps
evaluation problems out: for Blocksworld up to renaming of blocks (``canonical_key``).

Example:
  python -m trainer.reward_tuning --bench blocksworld --problems 40 --blocks 3-5 --out runs/rewards.jsonl \\
      --exclude ../shared/data/blocksworld/llm-reasoners/data/split_v1/split_v1_step_4_data.json
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from srm_tasks import TaskSpec, add_domain_arguments, domain_names, domain_options, get_spec
from srm_agent.console import HelpFormatter, positive_int
from srm_agent.fsio import atomic_write_text
from trainer.common import run_cli
from trainer.data import DataError

PROG = "python -m trainer.reward_tuning"
log = logging.getLogger("trainer.reward_tuning")


def rewards_from_search(nodes: Sequence[dict[str, Any]], source: str) -> list[dict[str, Any]]:
    """One row per visited child of an expanded node: its parent's state, its action and Q.

    Rejected or never-visited children carry no backed-up value and are left out; a visited
    child whose action proved invalid keeps the 0 it was backed up with (a useful negative).
    """
    by_id = {n["id"]: n for n in nodes}
    rows = []
    for node in nodes:
        parent = by_id.get(node.get("parent"))
        if parent is None or not parent.get("expanded") or node.get("visits", 0) < 1 or not node.get("action"):
            continue
        value = node["value_sum"] / node["visits"]
        rows.append({"state": parent["state"], "action": node["action"],
                     "reward": min(1.0, max(0.0, float(value))), "source": source,
                     "visits": int(node["visits"])})
    return rows


# -- problems -----------------------------------------------------------------------------------------

def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def training_problems(spec: TaskSpec, n: int, options: dict[str, Any], exclude: Sequence[Path]
                      ) -> tuple[list[Any], Callable[[Any], str], int]:
    """(training problems, their id function, how many were excluded): ``n`` problems of the domain, none equal
    (by the domain's ``problem_key``) to a problem in an ``exclude`` file, each structure once."""
    banned = {spec.problem_key(p) for path in exclude for p in spec.load_problems({**options, "data": str(path)})}
    pool = spec.load_problems({**options, "generate": n + len(banned)})
    unique: dict[str, Any] = {}
    for problem in pool:
        unique.setdefault(spec.problem_key(problem), problem)  # the first of each structure
    kept = [p for key, p in unique.items() if key not in banned]
    return kept[:n], lambda p: f"{spec.name}-{_digest(spec.problem_key(p))}", len(unique) - len(kept)


# -- the output file ----------------------------------------------------------------------------------

def done_problems(out: Path) -> set[str]:
    """Problem ids already in ``out``. A torn last line (a run killed mid-write) is dropped with the
    rows of the last problem before it, which is then run again."""
    if not out.exists():
        return set()
    raw = out.read_bytes()
    lines = raw.split(b"\n")
    complete, tail = lines[:-1], lines[-1]
    rows = []
    for number, line in enumerate(complete, 1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as exc:
            raise DataError(f"{out}:{number}: not valid JSON ({exc.msg}); not a file this command wrote?") from None
        if not isinstance(rows[-1], dict) or "problem_id" not in rows[-1]:
            raise DataError(f"{out}:{number}: no problem_id; --resume needs a file this command wrote")
    if tail.strip():
        last = rows[-1]["problem_id"] if rows else None
        rows = [r for r in rows if r["problem_id"] != last]
        atomic_write_text(out, "".join(json.dumps(r) + "\n" for r in rows))
        log.warning("%s ended in a torn line (a run killed mid-write); it was dropped with problem %s, which "
                    "will be run again", out, last)
    return {r["problem_id"] for r in rows}


def _append(fd_file, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[fd_file.write(view):]
    fd_file.flush()


def collect(task: Any, problems: Sequence[Any], *, generator: Any, srm: Any, out: Path, source: str,
            problem_id: Callable[[Any], str], depth: Callable[[Any], int], search: dict[str, Any],
            resume: bool = False) -> dict[str, int]:
    """Run MCTS on each problem not yet in ``out`` and append its rows; returns counts."""
    from tqdm.auto import tqdm

    from graphs.tree_search import build_tree_search
    from srm_agent.search.tree import nodes_of

    if out.exists() and out.stat().st_size and not resume:
        raise FileExistsError(f"{out} exists: pass --resume to add the missing problems to it, or another --out")
    done = done_problems(out) if resume else set()
    out.parent.mkdir(parents=True, exist_ok=True)
    evaluator = "srm" if srm is not None else "prior"
    graphs: dict[int, Any] = {}
    counts = {"problems": 0, "skipped": 0, "rows": 0, "solved": 0, "failed": 0, "empty": 0}
    with open(out, "ab", buffering=0) as sink, tqdm(problems, desc="mcts", unit="problem", dynamic_ncols=True) as bar:
        for problem in bar:
            pid = problem_id(problem)
            if pid in done:
                counts["skipped"] += 1
                continue
            d = depth(problem)
            if d not in graphs:
                # training rollouts are scored against the reference (goal_test), unlike an evaluation's search
                graphs[d] = build_tree_search(task, generator, srm, strategy="mcts", evaluator=evaluator, max_depth=d,
                                              goal_test="end", goal_visible=True,
                                              strategy_options={"reward_alpha": 0.0, "goal_reward": 1.0}, **search)
            final = graphs[d].invoke({"problem": problem})
            result = final.get("result") or {}
            if result.get("failure"):
                counts["failed"] += 1
                log.warning("problem %s: %s", pid, result["failure"])
            rows = rewards_from_search(nodes_of(final.get("tree")), source)
            counts["problems"] += 1
            counts["solved"] += bool(result.get("solved"))
            counts["empty"] += not rows
            if rows:
                _append(sink, "".join(json.dumps({**r, "problem_id": pid}) + "\n" for r in rows).encode())
                done.add(pid)
                counts["rows"] += len(rows)
            bar.set_postfix(rows=counts["rows"], solved=counts["solved"], refresh=False)
    return counts


# -- command line -------------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--bench", choices=domain_names(), default="blocksworld", help="the task to search")
    p.add_argument("--problems", type=positive_int, default=50, help="how many training problems")
    p.add_argument("--data", type=Path, default=None,
                   help="training problems: blocksworld, a RAP split JSON or PDDL folder (default: generated); "
                        "gsm8k, a train JSONL (default: the hub's train split, when online)")
    p.add_argument("--exclude", type=Path, action="append", default=[], metavar="SPLIT",
                   help="evaluation problems to keep out (blocksworld: RAP split JSON or PDDL folder, compared up to "
                        "renaming of blocks; gsm8k: JSONL, compared by question); repeatable")
    p.add_argument("--generator", default=None,
                   help="causal LM folder or hub id (default: the embedded SmolLM2-135M-Instruct)")
    p.add_argument("--srm", default=None, help="an SRM checkpoint to prune with (default: none, keep all candidates)")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when available)")
    p.add_argument("--k", type=positive_int, default=4, help="candidates per expansion")
    p.add_argument("--mcts-iters", type=positive_int, default=10, help="MCTS iterations per problem")
    p.add_argument("--depth", type=positive_int, default=None,
                   help="search depth (default: the instance's optimal length for blocksworld, 5 for gsm8k)")
    p.add_argument("--max-expansions", type=positive_int, default=60, help="expansion budget per search")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature of the generator")
    p.add_argument("--seed", type=int, default=0, help="seeds problem generation and the search")
    p.add_argument("--out", type=Path, required=True, help="the RewardTuning JSONL to write")
    p.add_argument("--resume", action="store_true", help="add the problems missing from --out")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_domain_arguments(p, blocks=(3, 5), steps=None)
    return p


def run(args: argparse.Namespace) -> dict[str, int]:
    spec = get_spec(args.bench)
    options = {"data": args.data, "seed": args.seed, "depth": args.depth, "split": "train",
               **domain_options(args, spec)}
    task = spec.make_task(options)
    problems, problem_id, excluded = training_problems(spec, args.problems, options, args.exclude)
    if not problems:
        raise DataError("no training problems left (check --data, --problems and --exclude)")
    if len(problems) < args.problems:
        log.warning("only %d training problems after excluding %d", len(problems), excluded)

    from srm_agent.embedded import default_generator
    from srm_agent.generators import TransformersGenerator
    from srm_agent.srm import SpeculativeRewardModel

    generator = (TransformersGenerator.from_pretrained(args.generator, device=args.device) if args.generator
                 else default_generator(device=args.device))
    srm = SpeculativeRewardModel.from_pretrained(args.srm, device=args.device) if args.srm else None
    source = f"mcts:{args.bench}:" + ("srm" if srm is not None else "none")
    search = {"k": args.k, "mcts_iters": args.mcts_iters, "max_expansions": args.max_expansions,
              "temperature": args.temperature, "seed": args.seed}
    counts = collect(task, problems, generator=generator, srm=srm, out=args.out, source=source,
                     problem_id=problem_id, resume=args.resume, search=search,
                     depth=lambda p: spec.depth(p, args.depth))
    print(f"{counts['rows']} rows from {counts['problems']} problems ({counts['solved']} solved, "
          f"{counts['skipped']} already in the file, {counts['empty']} explored nothing, {excluded} excluded as "
          f"evaluation problems) -> {args.out}")
    return counts


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv, run)


if __name__ == "__main__":
    raise SystemExit(main())
