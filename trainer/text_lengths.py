"""``python -m trainer.text_lengths SPLIT_JSON...``: how many tokens the SRM reads on Blocksworld problems.

For every state along each problem's gold plan (the start included, the goal state not), and every legal
action there, the ``(describe(state), action)`` pair is tokenized as the scorer encodes it (special tokens
included) with the SRM's tokenizer (default: the shipped SRM's). Prints, per split, the mean and largest
pair length and how many pairs a ``--window`` would cut: the check that a checkpoint's window holds every
state it will be shown.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srm_agent.console import HelpFormatter, run_command


def pair_lengths(tokenizer, problems: Sequence[dict[str, Any]]) -> list[int]:
    """Token counts of every (state, legal action) pair along the problems' gold plans."""
    from srm_tasks.blocksworld import BlocksworldTask

    task = BlocksworldTask()
    states, actions = [], []
    for problem in problems:
        state = task.initial_state(problem)
        for step in problem["gold_plan"]:
            text = task.describe(state)
            for action in task.legal_actions(state):
                states.append(text)
                actions.append(action)
            state = task.step(state, step)
    if not states:
        return []
    return [len(ids) for ids in tokenizer(states, actions, truncation=False)["input_ids"]]


def report(paths: Sequence[str], tokenizer, window: int) -> list[dict[str, Any]]:
    from srm_tasks.blocksworld import load_split

    rows = []
    for path in paths:
        lengths = pair_lengths(tokenizer, load_split(path))
        if not lengths:
            raise ValueError(f"{path}: no problem with a plan to measure")
        rows.append({"split": Path(path).name, "pairs": len(lengths), "mean": sum(lengths) / len(lengths),
                     "max": max(lengths), "cut": sum(n > window for n in lengths)})
    return rows


def _tokenizer(spec: str):
    from transformers import AutoTokenizer

    from srm_agent.embedded import shipped_checkpoint
    from srm_agent.srm import encoder_path

    folder = shipped_checkpoint() if spec == "shipped" else encoder_path(spec)
    if folder is None or not Path(folder).is_dir():
        raise ValueError(f"--srm: no SRM folder at {folder or spec!r}")
    return AutoTokenizer.from_pretrained(str(folder))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.text_lengths", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("splits", nargs="+", metavar="SPLIT_JSON", help="RAP split files (a JSON list of problems)")
    parser.add_argument("--srm", default="shipped", help="an SRM checkpoint folder whose tokenizer counts, 'shipped' (the "
                                                         "default) or 'embedded' (the embedded MiniLM)")
    parser.add_argument("--window", type=int, default=128, help="the window to check against (default 128)")
    args = parser.parse_args(argv)

    def run() -> None:
        rows = report(args.splits, _tokenizer(args.srm), args.window)
        print(f"| split | pairs | mean tokens | largest | over {args.window} |")
        print("| --- | ---: | ---: | ---: | ---: |")
        for r in rows:
            print(f"| {r['split']} | {r['pairs']:,} | {r['mean']:.0f} | {r['max']} | {r['cut']} |")

    return run_command(run, debug=False, usage_errors=(ValueError, OSError))


if __name__ == "__main__":
    sys.exit(main())
