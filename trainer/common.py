"""What both training commands share: options, the data split, model loading, the run, errors.

Stage 1 (``train_srm``) and stage 2 (``train_srm_plus``) differ only in their data and starting
weights; everything else (the split by problem, the loop, checkpoints, the model card) is here
and in ``trainer.loop``, once.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import shlex
import shutil
import sys
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from srm_agent.console import positive_int

from trainer.data import (DataError, LoadStats, Pair, StepRecord, dev_groups, load_records, pairs_from_rewards,
                          require_pairs, split_by_group, subsample, subsample_states)
from trainer.loop import LoopConfig, TrainResult

log = logging.getLogger("trainer")
PRECISIONS = ("auto", "no", "bf16", "fp16")


# -- options ------------------------------------------------------------------------------------------

def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {value}")
    return value


def add_training_args(p: argparse.ArgumentParser, *, epochs: int = 5) -> None:
    """Options of the loop, the split, checkpoints and output (defaults: the paper's recipe)."""
    g = p.add_argument_group("training")
    g.add_argument("--lr", type=float, default=1e-5, help="AdamW learning rate (paper: 1e-5)")
    g.add_argument("--epochs", type=positive_int, default=epochs, help="passes over the training items")
    g.add_argument("--batch-size", type=positive_int, default=8,
                   help="pairs (pairwise) or steps (pointwise) per micro-batch and process (paper: 8 pairs)")
    g.add_argument("--grad-accum", type=positive_int, default=1, help="micro-batches per optimizer step")
    g.add_argument("--warmup", type=_fraction, default=0.1, help="linear warm-up, as a fraction of all steps")
    g.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip; 0 turns it off")
    g.add_argument("--weight-decay", type=float, default=0.0, help="AdamW weight decay")
    g.add_argument("--seed", type=int, default=0, help="seeds the split, shuffling, subsampling and dropout")
    g.add_argument("--max-length", type=positive_int, default=512,
                   help="tokens per (context, step) pair; cut it (e.g. 256) to train faster on a CPU")
    g.add_argument("--max-pairs", type=positive_int, default=None,
                   help="train on at most this many items (pairs, or steps for a pointwise loss), drawn with --seed "
                        "(default: all)")
    g.add_argument("--mixed-precision", choices=PRECISIONS, default=None,
                   help="autocast dtype (default: what accelerate launch says, else bf16 on GPUs that have it, "
                        "fp16 on other GPUs, none on CPU)")
    g.add_argument("--cpu", action="store_true", help="train on the CPU even when a GPU is present")
    d = p.add_argument_group("dev split and early stopping")
    d.add_argument("--dev-fraction", type=_fraction, default=0.1, help="share of problems held out (0: none)")
    d.add_argument("--max-dev", type=positive_int, default=2000,
                   help="evaluate on at most this many dev pairs and this many dev steps")
    d.add_argument("--eval-batch-size", type=positive_int, default=32, help="pairs or steps per dev batch")
    d.add_argument("--patience", type=int, default=2, help="epochs without a better dev metric before stopping "
                                                          "(0: never stop early)")
    o = p.add_argument_group("output and checkpoints")
    o.add_argument("--out", required=True, type=Path, help="the checkpoint folder to write (appears when complete)")
    o.add_argument("--overwrite", action="store_true", help="replace --out if it exists")
    o.add_argument("--save-every", type=int, default=500,
                   help="optimizer steps between resumable training checkpoints (0: at epoch ends only)")
    o.add_argument("--state-dir", type=Path, default=None,
                   help="where training checkpoints go (default: OUT.state, deleted after a successful run)")
    o.add_argument("--resume", action="store_true", help="continue from the last training checkpoint")
    o.add_argument("--keep-state", action="store_true", help="keep the training checkpoints after the run")
    o.add_argument("--save-dtype", choices=("float32", "float16", "bfloat16"), default="float32",
                   help="dtype of the saved weights")
    g.add_argument("--no-bucket", dest="bucket", action="store_false",
                   help="plain shuffled batches instead of batches of similar length")
    g.add_argument("--pairs-by-state", action="store_true",
                   help="pairwise: draw --max-pairs as whole states (all sibling pairs of each) and keep a state's "
                        "pairs in one batch, so each (state, step) is encoded once: more pairs per second")
    g.add_argument("--freeze-embeddings", action="store_true",
                   help="train the encoder layers and the head only (faster, and --save-delta then skips the "
                        "embeddings: about half the size)")
    p.add_argument("--trust-remote-code", action="store_true", help="allow model code from the model folder")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")


def loop_config(args: argparse.Namespace, loss: str) -> LoopConfig:
    return LoopConfig(loss=loss, lr=args.lr, epochs=args.epochs, batch_size=args.batch_size, grad_accum=args.grad_accum,
                      warmup=args.warmup, grad_clip=args.grad_clip, weight_decay=args.weight_decay, seed=args.seed,
                      max_length=args.max_length, eval_batch_size=args.eval_batch_size, patience=args.patience,
                      save_every=args.save_every, bucket=args.bucket, freeze_embeddings=args.freeze_embeddings,
                      by_state=args.pairs_by_state)


def state_dir(args: argparse.Namespace) -> Path:
    return args.state_dir or args.out.with_name(args.out.name + ".state")


def parse(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parsed options, with ``command``: the exact command line, for the model card."""
    args = parser.parse_args(argv)
    args.command = command_line(parser.prog, argv)
    return args


def command_line(prog: str, argv: Sequence[str] | None) -> str:
    """The exact command, for the model card (``prog`` is the parser's, e.g. "python -m trainer.train_srm")."""
    return f"{prog} " + shlex.join(sys.argv[1:] if argv is None else list(argv))


# -- models -------------------------------------------------------------------------------------------

@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    logger = logging.getLogger(name)
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def load_model(name: str | Path, what: str, *, trust_remote_code: bool = False, quiet_head: bool = False):
    """(model, tokenizer, head_trained) of an encoder folder or hub id; not a model → one clear error."""
    from srm_agent.sources import check_checkpoint_dir
    from srm_agent.srm import SpeculativeRewardModel

    path = Path(str(name)).expanduser()
    if path.exists():
        check_checkpoint_dir(path, what)
    with _quiet("srm_agent.srm") if quiet_head else contextlib.nullcontext():
        srm = SpeculativeRewardModel.from_pretrained(str(name), device="cpu", dtype="float32",
                                                     trust_remote_code=trust_remote_code)
    return srm.model, srm.tokenizer, srm.head_trained


def make_accelerator(args: argparse.Namespace):
    """An Accelerator honouring ``accelerate launch`` settings; ``auto`` precision per the device."""
    import os

    import torch
    from accelerate import Accelerator

    precision = args.mixed_precision  # None with `accelerate launch`: accelerate reads the launcher's choice
    if precision == "auto" or (precision is None and not os.environ.get("ACCELERATE_MIXED_PRECISION")):
        on_gpu = torch.cuda.is_available() and not args.cpu
        precision = ("bf16" if torch.cuda.is_bf16_supported() else "fp16") if on_gpu else "no"
    return Accelerator(mixed_precision=precision, cpu=args.cpu, gradient_accumulation_steps=args.grad_accum)


# -- data ---------------------------------------------------------------------------------------------

def load_all(paths: Sequence[Path], zero_as: str = "drop") -> tuple[list[StepRecord], list[LoadStats]]:
    records: list[StepRecord] = []
    stats: list[LoadStats] = []
    for path in paths:
        got, s = load_records(path, zero_as)
        records.extend(got)
        stats.append(s)
    return records, stats


@dataclass
class Split:
    """Training items and dev sets, split by problem."""

    train_pairs: list[Pair]
    train_records: list[StepRecord]
    dev_pairs: list[Pair]
    dev_records: list[StepRecord]
    info: dict[str, Any] = field(default_factory=dict)

    def items(self, loss: str) -> list[Pair] | list[StepRecord]:
        return self.train_pairs if loss == "pairwise" else self.train_records


def make_split(records: Sequence[StepRecord], *, where: str, epsilon: float, dev_fraction: float, seed: int,
               max_items: int | None, max_dev: int, need_pairs: bool, by_state: bool = False) -> Split:
    """Pairs from ``records``, then a split by problem; subsampling is seeded and never crosses it
    (``by_state``: training pairs are drawn as whole states)."""
    pairs = pairs_from_rewards(records, epsilon)
    if need_pairs:
        require_pairs(pairs, records, where, epsilon)
    dev = dev_groups([r.group for r in records], dev_fraction, seed)
    train_pairs, dev_pairs = split_by_group(pairs, dev)
    train_records, dev_records = split_by_group(records, dev)
    if need_pairs and not train_pairs:
        raise DataError(f"{where}: all {len(pairs)} pairs fell in the dev split ({len(dev)} problems); "
                        "lower --dev-fraction or add data")
    draw = subsample_states if by_state else subsample
    split = Split(draw(train_pairs, max_items, seed), subsample(train_records, max_items, seed),
                  subsample(dev_pairs, max_dev, seed), subsample(dev_records, max_dev, seed))
    groups = {r.group for r in records}
    split.info = {"seed": seed, "dev_fraction": dev_fraction, "epsilon": epsilon,
                  "train_groups": len(groups - dev), "dev_groups": len(dev),
                  "train_pairs_available": len(train_pairs), "train_records_available": len(train_records),
                  "train_pairs": len(split.train_pairs), "train_records": len(split.train_records),
                  "dev_pairs": len(split.dev_pairs), "dev_records": len(split.dev_records)}
    return split


# -- one run ------------------------------------------------------------------------------------------

def fit(args: argparse.Namespace, accelerator, *, model, tokenizer, split: Split, loss: str, state: Path,
        base: str) -> TrainResult:
    """Train with the loop on ``split`` (training checkpoints under ``state``)."""
    from trainer.loop import fingerprint, train

    config = loop_config(args, loss)
    items = split.items(loss)
    if not items:
        raise DataError(f"no training items for the {loss} objective after the split")
    run_fingerprint = fingerprint(config, [*items, *split.dev_pairs, *split.dev_records], base=str(base))
    result = train(model, tokenizer, items, config=config, accelerator=accelerator, dev_pairs=split.dev_pairs,
                   dev_records=split.dev_records, state_dir=state, resume=args.resume,
                   run_fingerprint=run_fingerprint, desc=loss)
    result.extra["config"] = asdict(config)
    result.extra["train_items"] = len(items)
    seen = result.steps * config.batch_size * config.grad_accum  # a resumed run's wall time covers part of them
    fresh = result.resumed_from is None and result.wall_s > 0
    result.extra["items_per_s"] = round(seen / result.wall_s, 2) if fresh else None
    return result


def finish(args: argparse.Namespace, accelerator, result: TrainResult, tokenizer, *, card: dict[str, Any],
           metrics: dict[str, Any], states: Sequence[Path], dev_pairs: Sequence[Pair] = ()) -> Path | None:
    """Export the checkpoint (main process) with its dev pairs, so anyone can recompute its dev pairwise accuracy
    from the files alone; then drop the training checkpoints unless kept."""
    from trainer.export import export_checkpoint

    out = None
    if accelerator.is_main_process:
        out = export_checkpoint(result.model, tokenizer, args.out, card=card, metrics=metrics, dtype=args.save_dtype,
                                overwrite=args.overwrite, window=result.extra.get("window"),
                                delta_base=getattr(args, "delta_base", None), dev_pairs=dev_pairs)
        if not args.keep_state:
            for path in states:
                shutil.rmtree(path, ignore_errors=True)
        print(f"checkpoint: {out}")
    accelerator.wait_for_everyone()
    return out


def card_data(stats: Sequence[LoadStats]) -> list[dict[str, Any]]:
    return [s.to_dict() for s in stats]


# -- errors -------------------------------------------------------------------------------------------

def run_cli(parser: argparse.ArgumentParser, argv: Sequence[str] | None, run: Callable[[argparse.Namespace], Any]
            ) -> int:
    """Parse, run, and turn bad input into one ``error: …`` line (tracebacks only with --debug)."""
    from srm_agent.console import quiet_transformers, run_command
    from srm_agent.errors import SRMAgentError

    args = parse(parser, argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not args.debug:
        quiet_transformers()
    return run_command(lambda: run(args), debug=args.debug,
                       usage_errors=(DataError, SRMAgentError, FileExistsError, FileNotFoundError, ValueError),
                       on_interrupt="rerun the same command with --resume to continue from the last training "
                                    "checkpoint")
