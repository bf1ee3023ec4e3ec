"""``python -m trainer.train_srm_plus``: stage 2, SRM+ fine-tuned on MCTS-derived scalar rewards.

Starts from a stage-1 checkpoint (``--init``) and trains on RewardTuning JSONL written by
``python -m trainer.reward_tuning`` (``{state, action, reward, source, problem_id}``), split by
``problem_id``. Two objectives:

- ``pairwise``: sibling actions (same state) whose rewards differ by more than ``--epsilon``,
  under the stage-1 Bradley–Terry loss
- ``regression``: mean squared error of σ(score) against the reward

``--compare`` trains both on the same split from the same start and keeps the one with the better
dev pairwise accuracy (ties go to pairwise); the model card records both.

Example:
  python -m trainer.train_srm_plus --init runs/srm-prm800k --data runs/rewards.jsonl --out runs/srm-plus --compare
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srm_agent.console import HelpFormatter

from trainer import common
from trainer.common import (add_training_args, card_data, finish, fit, load_all, load_model,
                            make_accelerator, make_split, run_cli, state_dir)
from trainer.data import DataError
from trainer.export import check_out_dir
from trainer.loop import TrainResult

PROG = "python -m trainer.train_srm_plus"
OBJECTIVES = ("pairwise", "regression")
DESCRIPTIONS = {"pairwise": "pairwise Bradley–Terry −log σ(s⁺ − s⁻) on sibling actions with |ΔQ| > ε",
                "regression": "mean squared error of σ(s) against the MCTS reward"}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--init", required=True, help="the stage-1 SRM checkpoint folder to start from")
    p.add_argument("--data", action="append", required=True, type=Path, metavar="FILE",
                   help="RewardTuning JSONL (repeatable)")
    p.add_argument("--objective", choices=OBJECTIVES, default="pairwise", help="the training objective (see above)")
    p.add_argument("--epsilon", type=float, default=0.1, help="pairs need rewards that differ by more than this")
    p.add_argument("--compare", action="store_true",
                   help="train both objectives and keep the better by dev pairwise accuracy")
    add_training_args(p)
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return common.parse(build_parser(), argv)


def _score(result: TrainResult) -> float:
    acc = (result.best or {}).get("dev_pair_acc")
    return -1.0 if acc is None else acc


def run(args: argparse.Namespace) -> TrainResult:
    check_out_dir(args.out, args.overwrite)
    records, stats = load_all(args.data)
    objectives = list(OBJECTIVES) if args.compare else [args.objective]
    split = make_split(records, where=", ".join(map(str, args.data)), epsilon=args.epsilon,
                       dev_fraction=args.dev_fraction, seed=args.seed, max_items=args.max_pairs, max_dev=args.max_dev,
                       need_pairs="pairwise" in objectives, by_state=args.pairs_by_state)
    if args.compare and not split.dev_pairs:
        raise DataError("--compare picks by dev pairwise accuracy, but the dev split has no pairs; raise "
                        "--dev-fraction or lower --epsilon")
    accelerator = make_accelerator(args)
    root = state_dir(args)
    results: dict[str, TrainResult] = {}
    tokenizer = None
    for objective in objectives:
        model, tokenizer, head_trained = load_model(args.init, "stage-1 SRM checkpoint",
                                                    trust_remote_code=args.trust_remote_code)
        if not head_trained and accelerator.is_main_process:
            print(f"note: {args.init} has an untrained scoring head; is it a stage-1 checkpoint?", file=sys.stderr)
        state = root / objective if args.compare else root
        results[objective] = fit(args, accelerator, model=model, tokenizer=tokenizer, split=split, loss=objective,
                                 state=state, base=args.init)
    chosen = max(objectives, key=lambda o: (_score(results[o]), o == "pairwise"))
    result = results[chosen]
    command = args.command
    sections: dict[str, str] = {}
    comparison: dict[str, Any] = {}
    if args.compare:
        rows = ["| objective | best epoch | dev pairwise acc | dev AUROC | dev loss | steps |",
                "| --- | ---: | ---: | ---: | ---: | ---: |"]
        for o, r in results.items():
            best = r.best or {}
            rows.append(f"| {o}{' (kept)' if o == chosen else ''} | {best.get('epoch', '–')} | "
                        f"{_f(best.get('dev_pair_acc'))} | {_f(best.get('dev_auroc'))} | {_f(best.get('dev_loss'))} | "
                        f"{r.steps} |")
            comparison[o] = r.summary()
        sections["Objective comparison"] = ("Both objectives were trained from the same start on the same split; the "
                                            "better dev pairwise accuracy was kept.\n\n" + "\n".join(rows))
    card = {"title": "SRM+ (stage 2: MCTS rewards)", "base": args.init, "objective": DESCRIPTIONS[chosen],
            "summary": "A speculative reward model fine-tuned from a stage-1 SRM on RewardTuning data: each explored "
                       "(state, action) of MCTS with its backed-up value Q in [0, 1].",
            "data": card_data(stats), "split": split.info,
            "config": {**result.extra["config"], "epsilon": args.epsilon}, "history": result.history,
            "best": result.best, "steps": result.steps, "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early, "wall_s": sum(r.wall_s for r in results.values()),
            "command": command, "sections": sections}
    metrics = {"stage": 2, "init": args.init, "objective": chosen, "epsilon": args.epsilon, "data": card_data(stats),
               "split": split.info, **result.summary(), "config": result.extra["config"], "command": command,
               "comparison": comparison or None}
    finish(args, accelerator, result, tokenizer, card=card, metrics=metrics, states=[root],
           dev_pairs=split.dev_pairs)
    return result


def _f(value: float | None) -> str:
    return "–" if value is None else f"{value:.4f}"


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv, run)


if __name__ == "__main__":
    raise SystemExit(main())
