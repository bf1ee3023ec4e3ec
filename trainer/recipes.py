"""Recipes that build the shipped checkpoints: ``python -m trainer.recipes blocksworld|gsm8k``.

``blocksworld`` (about 45 minutes on 2 CPU cores) builds the Blocksworld SRM from the embedded MiniLM:

1. exact process labels on generated problems (3-7 blocks, none equal to a public RAP/PlanBench
   instance up to renaming of blocks): at states on walks that take an optimal action half of the
   time, every legal action is labelled good when it lowers the optimal distance to the goal (a
   planner's labels, as Math-Shepherd labels steps automatically);
2. the SRM: the pairwise loss on sibling pairs, in batches of similar length, embeddings frozen,
   128-token window (every Blocksworld state of the public splits fits);
3. its ranking quality on held-out generated states (``trainer.evaluate_srm``), added to its card.

The checkpoint is written compactly (fp16, only the tensors that differ from the embedded MiniLM)
under ``--install`` (default ``srm_agent/checkpoints``), where ``srm_agent.default_srm()`` finds it.
``--resume`` continues an interrupted recipe: finished steps are skipped, training resumes from its
last checkpoint.

``gsm8k`` trains the general SRM on all PRM800K phase-1 pairs at 256 tokens (hours on a CPU; minutes
on a GPU) for the GSM8K search.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from srm_agent.console import HelpFormatter
from srm_agent.fsio import atomic_dir

from trainer import blocksworld_labels, evaluate_srm, train_srm

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"
INSTALL = ROOT / "srm_agent" / "checkpoints"


def _step(title: str, command: Sequence[str], main, done: Path | None = None) -> None:
    print(f"\n== {title}\n   python -m {' '.join(command)}", flush=True)
    if done is not None and done.exists():
        print(f"   already done: {done}", flush=True)
        return
    started = time.time()
    code = main(list(command[1:]))
    if code:
        raise SystemExit(f"error: step '{title}' failed with exit status {code}")
    print(f"   done in {time.time() - started:.0f} s", flush=True)


def public_splits(shared: Path = SHARED_DATA) -> list[str]:
    """Every public RAP/PlanBench split file under ``shared``: what training and held-out checks leave out."""
    folder = shared / "blocksworld" / "llm-reasoners" / "data"
    return [str(p) for p in sorted(folder.glob("**/*.json")) if p.name != "bw_basic_sup.json"]


def _install(source: Path, target: Path) -> None:
    with atomic_dir(target) as tmp:
        shutil.copytree(source, tmp, ignore=shutil.ignore_patterns("*.state"), dirs_exist_ok=True)
    print(f"   installed {target}")


def _add_ranking_quality(checkpoint: Path, figures: Path) -> None:
    """Append the held-out ranking-quality table to the checkpoint's model card."""
    from trainer.evaluate_srm import table

    data = json.loads(figures.read_text())
    card = checkpoint / "README.md"
    if "## Ranking quality" in card.read_text():
        return
    card.write_text(card.read_text() + "\n## Ranking quality on held-out generated states\n\n"
                    f"{data['states']} states, {data['blocks'][0]}-{data['blocks'][1]} blocks, walks of up to "
                    f"{data['walk_length']} actions, each random or optimal (seed {data['seed']}), a third in each "
                    "band of distance to the goal; `python -m trainer.evaluate_srm`.\n\n"
                    + table(data["results"]) + "\n")


def blocksworld(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    splits = public_splits(Path(args.shared))
    exclude = [flag for split in splits for flag in ("--exclude", split)]
    if not exclude:
        print("warning: no RAP/PlanBench splits found to exclude; training problems are only generated ones")
    labels, srm, figures = work / "bw_exact.jsonl", work / "srm", work / "ranking_quality.json"
    _step("exact Blocksworld labels", ["trainer.blocksworld_labels", "--labeller", "exact", "--problems",
                                       str(args.label_problems), "--blocks", "3-7", "--walks", "4", "--walk-length",
                                       "10", "--optimal-share", "0.5", "--seed", str(args.seed), "--out", str(labels),
                                       *exclude], blocksworld_labels.main, done=labels if args.resume else None)
    _step("SRM (pairwise, exact labels)", ["trainer.train_srm", "--data", str(labels), "--max-length", "128",
                                           "--max-pairs", str(args.pairs), "--epochs", "1", "--batch-size", "16",
                                           "--lr", str(args.lr), "--warmup", "0.05", "--freeze-embeddings",
                                           "--dev-fraction", "0.05", "--max-dev", "600", "--save-every", "100",
                                           "--seed", str(args.seed), "--out", str(srm), "--save-delta",
                                           "--save-dtype", "float16", *(["--resume"] if args.resume else [])],
          train_srm.main, done=srm if args.resume else None)
    _step("ranking quality", ["trainer.evaluate_srm", "--srm", "untrained=embedded", "--srm", f"SRM={srm}",
                              "--exclude-labels", str(labels), *exclude, "--out", str(figures)], evaluate_srm.main,
          done=figures if args.resume else None)
    _add_ranking_quality(srm, figures)
    _install(srm, Path(args.install) / "blocksworld-srm")


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
    parser.add_argument("--label-problems", type=int, default=2400, help="blocksworld: generated problems to label")
    parser.add_argument("--pairs", type=int, default=12800, help="blocksworld: training pairs (one epoch)")
    parser.add_argument("--lr", type=float, default=1e-4,
                        help="learning rate: above the paper's 1e-5, which needs many more steps than a CPU budget "
                             "allows")
    parser.add_argument("--resume", action="store_true",
                        help="continue an interrupted recipe in the same --work folder")
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
