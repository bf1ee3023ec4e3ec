"""Recipes that build the shipped checkpoints: ``python -m trainer.recipes blocksworld|gsm8k``.

``blocksworld`` (about 30 minutes on 2 CPU cores), the paper's two stages from the embedded MiniLM:

1. weak Blocksworld labels (no planner) on generated training problems;
2. SRM, stage 1: PRM800K phase-1 step labels mixed with those weak labels, pairwise loss;
3. RewardTuning data: MCTS with the embedded generator and the stage-1 SRM on other generated
   training problems, terminal reward from the simulator's goal test;
4. SRM+, stage 2: the stage-1 model fine-tuned on the backed-up Q values. A few CPU minutes of
   MCTS with a 135M generator solve few problems, so the Q values give only tens of sibling pairs;
   the weak Blocksworld labels are mixed in (pairwise loss) so that stage 2 has enough to learn from.

To fit a CPU it cuts: sequences to 128 tokens (Blocksworld states are ~100; PRM800K contexts lose
their start), stage 1 to a subsample of pairs and one epoch, and RewardTuning to a few 4–5 block
problems with few MCTS iterations; with so few steps it raises the learning rate to 2e-4. Every evaluation instance (all RAP/PlanBench splits found) is
kept out of training up to renaming of blocks. Both checkpoints are written as fp16 safetensors
with their model cards under ``--install`` (default ``srm_agent/checkpoints``), where
``srm_agent.default_srm()`` finds them.

``gsm8k`` trains the general SRM on all PRM800K phase-1 pairs at 256 tokens (hours on a CPU; minutes
on a GPU) for the GSM8K search.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from srm_agent.console import HelpFormatter
from srm_agent.fsio import atomic_dir

from trainer import blocksworld_labels, reward_tuning, train_srm, train_srm_plus

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
INSTALL = ROOT / "srm_agent" / "checkpoints"


def _step(title: str, command: Sequence[str], main) -> None:
    print(f"\n== {title}\n   python -m {' '.join(command)}", flush=True)
    started = time.time()
    code = main(list(command[1:]))
    if code:
        raise SystemExit(f"error: step '{title}' failed with exit status {code}")
    print(f"   done in {time.time() - started:.0f} s", flush=True)


def _public_splits(shared: Path) -> list[str]:
    folder = shared / "blocksworld" / "llm-reasoners" / "data"
    return [str(p) for p in sorted(folder.glob("**/*.json")) if p.name != "bw_basic_sup.json"]


def _install(source: Path, target: Path) -> None:
    with atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("*.state"), dirs_exist_ok=True)
    print(f"   installed {target}")


def blocksworld(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    prm800k = Path(args.prm800k)
    if not prm800k.is_file():
        raise SystemExit(f"error: PRM800K data not found at {prm800k}; pass --prm800k PATH")
    exclude = [flag for split in _public_splits(Path(args.shared)) for flag in ("--exclude", split)]
    if not exclude:
        print("warning: no RAP/PlanBench splits found to exclude; training problems are only generated ones")
    fp16 = ["--save-dtype", "float16"]
    stage1, plus, rewards = work / "srm", work / "srm-plus", work / "rewards.jsonl"
    _step("weak Blocksworld labels", ["trainer.blocksworld_labels", "--problems", str(args.label_problems),
                                      "--blocks", "4-6", "--seed", str(args.seed), "--out",
                                      str(work / "bw_weak.jsonl"), *exclude], blocksworld_labels.main)
    _step("SRM, stage 1", ["trainer.train_srm", "--data", str(prm800k), "--data", str(work / "bw_weak.jsonl"),
                           "--max-length", "128", "--max-pairs", str(args.stage1_pairs), "--epochs", "1",
                           "--batch-size", "16", "--lr", str(args.lr), "--max-dev", "300", "--seed", str(args.seed),
                           "--out", str(stage1),
                           "--overwrite", *fp16], train_srm.main)
    _step("RewardTuning data (MCTS)", ["trainer.reward_tuning", "--bench", "blocksworld", "--problems",
                                       str(args.mcts_problems), "--blocks", "4-5", "--mcts-iters",
                                       str(args.mcts_iters), "--k", "4", "--srm", str(stage1), "--seed",
                                       str(args.seed + 1), "--out", str(rewards), "--resume", *exclude],
          reward_tuning.main)
    _step("SRM+, stage 2", ["trainer.train_srm_plus", "--init", str(stage1), "--data", str(rewards), "--data",
                            str(work / "bw_weak.jsonl"), "--objective", "pairwise", "--epochs", "1", "--max-pairs",
                            str(args.stage2_pairs), "--max-length", "128", "--lr", str(args.lr), "--seed",
                            str(args.seed), "--out", str(plus), "--overwrite", *fp16], train_srm_plus.main)
    install = Path(args.install)
    _install(stage1, install / "blocksworld-srm")
    _install(plus, install / "blocksworld-srm-plus")


def gsm8k(args: argparse.Namespace) -> None:
    work = Path(args.work)
    _step("SRM on PRM800K", ["trainer.train_srm", "--data", args.prm800k, "--max-length", "256", "--epochs", "2",
                             "--seed", str(args.seed), "--out", str(work / "srm"), "--overwrite",
                             "--save-dtype", "float16"], train_srm.main)
    _install(work / "srm", Path(args.install) / "prm800k-srm")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trainer.recipes", description=__doc__,
                                     formatter_class=HelpFormatter)
    parser.add_argument("recipe", choices=("blocksworld", "gsm8k"), help="which checkpoints to build")
    parser.add_argument("--shared", default=str(SHARED_DATA), help="the shared data folder (default: ../shared/data)")
    parser.add_argument("--prm800k", default=None,
                        help="PRM800K phase-1 parquet or JSONL (default: the shared phase1_train_plus parquet)")
    parser.add_argument("--work", default=None, help="intermediate files (default: runs/recipe-<recipe>)")
    parser.add_argument("--install", default=str(INSTALL),
                        help="where the final checkpoints go (default: srm_agent/checkpoints)")
    parser.add_argument("--label-problems", type=int, default=150, help="blocksworld: generated problems to label")
    parser.add_argument("--stage1-pairs", type=int, default=1600, help="blocksworld: stage-1 training pairs")
    parser.add_argument("--mcts-problems", type=int, default=12, help="blocksworld: problems searched for stage 2")
    parser.add_argument("--stage2-pairs", type=int, default=800, help="blocksworld: stage-2 training pairs")
    parser.add_argument("--mcts-iters", type=int, default=8, help="blocksworld: MCTS iterations per problem")
    parser.add_argument("--lr", type=float, default=2e-4,
                        help="learning rate of both stages: far above the paper's 1e-5, which needs many more steps "
                             "than a CPU budget allows")
    parser.add_argument("--seed", type=int, default=0, help="seeds every stage")
    args = parser.parse_args(argv)
    args.work = args.work or f"runs/recipe-{args.recipe}"
    args.prm800k = args.prm800k or str(Path(args.shared) / "prm800k" / "stepwise_critic"
                                       / "phase1_train_plus.stepwise-critic.parquet")
    started = time.time()
    (blocksworld if args.recipe == "blocksworld" else gsm8k)(args)
    print(f"\nrecipe {args.recipe} finished in {(time.time() - started) / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())
