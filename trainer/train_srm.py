"""``python -m trainer.train_srm``: stage 1, the SRM trained on step-level process labels (PRM800K).

Reads PRM800K (official JSONL or the stepwise-critic parquet files; step-record or RewardTuning
JSONL too), pairs sibling steps that differ in rating, splits by problem, and trains a one-logit
encoder with the pairwise Bradley–Terry loss (or pointwise BCE). Runs as is on a CPU or one GPU,
and under ``accelerate launch -m trainer.train_srm …`` on several GPUs or machines.

Example (CPU, a quick subsample):
  python -m trainer.train_srm --data ../shared/data/prm800k/stepwise_critic/phase1_train_plus.stepwise-critic.parquet \\
      --out runs/srm-prm800k --max-pairs 2000 --max-length 256 --epochs 1
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path

from srm_agent.console import HelpFormatter

from trainer import common
from trainer.common import (add_training_args, card_data, finish, fit, load_all, load_model,
                            make_accelerator, make_split, run_cli, state_dir)
from trainer.data import ZERO_AS
from trainer.export import check_out_dir
from trainer.loop import TrainResult

PROG = "python -m trainer.train_srm"


_LABELS = {"step-records": "step records with their labels, e.g. exact Blocksworld process labels: good when the "
                           "action lowers the optimal distance to the goal",
           "prm800k-jsonl": "PRM800K ratings: 1 good, -1 bad, 0 {zero_as}",
           "prm800k-stepwise-parquet": "PRM800K ratings: 1 good, -1 bad, 0 {zero_as}"}


def _delta_base(base: str | None) -> str:
    """What a compact checkpoint is stored against: the base encoder, or, when the base is itself a compact
    checkpoint, that checkpoint's own base (so a fine-tuned SRM never depends on an intermediate folder)."""
    if base is None:
        return "embedded"
    config = Path(base) / "config.json"
    if config.is_file():
        from srm_agent.encoding import BASE_KEY

        inner = json.loads(config.read_text(encoding="utf-8")).get(BASE_KEY)
        if inner:
            return inner
    return str(Path(base).resolve())


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog=PROG, description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--data", action="append", required=True, type=Path, metavar="FILE",
                   help="PRM800K JSONL or stepwise-critic parquet (also step-record/RewardTuning JSONL); repeatable")
    p.add_argument("--base", default=None,
                   help="encoder folder or hub id to start from (default: the embedded all-MiniLM-L6-v2)")
    p.add_argument("--loss", choices=("pairwise", "bce"), default="pairwise",
                   help="pairwise Bradley-Terry on sibling pairs (paper), or pointwise BCE on the labels")
    p.add_argument("--zero-as", choices=ZERO_AS, default="drop", help="what a PRM800K rating of 0 becomes")
    add_training_args(p)
    p.add_argument("--save-delta", action="store_true",
                   help="write only the tensors that differ from --base (a compact checkpoint that loads its base "
                        "first)")
    return p


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    return common.parse(build_parser(), argv)


def run(args: argparse.Namespace) -> TrainResult:
    from srm_agent.embedded import SRM_WHEEL, embedded_srm_backbone

    check_out_dir(args.out, args.overwrite)
    args.delta_base = _delta_base(args.base) if args.save_delta else None
    records, stats = load_all(args.data, args.zero_as)
    split = make_split(records, where=", ".join(map(str, args.data)), epsilon=0.0, dev_fraction=args.dev_fraction,
                       seed=args.seed, max_items=args.max_pairs, max_dev=args.max_dev,
                       need_pairs=args.loss == "pairwise", by_state=args.pairs_by_state)
    accelerator = make_accelerator(args)
    base = args.base or str(embedded_srm_backbone())
    model, tokenizer, _ = load_model(base, "base model", trust_remote_code=args.trust_remote_code, quiet_head=True)
    state = state_dir(args)
    result = fit(args, accelerator, model=model, tokenizer=tokenizer, split=split, loss=args.loss, state=state,
                 base=base)
    shown_base = base if args.base else f"the embedded all-MiniLM-L6-v2 ({SRM_WHEEL})"
    labels = "; ".join(sorted({_LABELS.get(s.format, s.format) for s in stats})).replace("{zero_as}", args.zero_as)
    objective = ("pairwise Bradley–Terry −log σ(s⁺ − s⁻) on sibling steps" if args.loss == "pairwise"
                 else "pointwise BCE of σ(s) against the step label")
    command = args.command
    card = {"title": "SRM (stage 1: process labels)", "base": shown_base, "objective": objective,
            "summary": "A speculative reward model: a one-logit encoder scoring (state, action) pairs, trained on "
                       f"step-level labels ({labels}).",
            "data": card_data(stats), "split": split.info,
            "config": {**result.extra["config"], "zero_as": args.zero_as},
            "history": result.history, "best": result.best, "steps": result.steps, "epochs_run": result.epochs_run,
            "stopped_early": result.stopped_early, "wall_s": result.wall_s, "command": command}
    metrics = {"stage": 1, "base": args.base or "embedded", "loss": args.loss, "zero_as": args.zero_as, "data": card_data(stats),
               "split": split.info, **result.summary(), "config": result.extra["config"], "command": command,
               "window": result.extra["window"], "train_pairs_per_s": result.extra["items_per_s"]}
    finish(args, accelerator, result, tokenizer, card=card, metrics=metrics, states=[state],
           dev_pairs=split.dev_pairs)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    return run_cli(build_parser(), argv, run)


if __name__ == "__main__":
    raise SystemExit(main())
