"""The one training loop of both stages (SRM on process labels, SRM+ on MCTS rewards).

``accelerate`` places the model and batches on devices, wraps the model for several GPUs or
machines (``accelerate launch``), applies bf16/fp16 autocast and accumulates gradients. The loop
adds what the paper's recipe needs (AdamW, linear warm-up then decay, gradient clipping), a dev
evaluation each epoch with early stopping on the best weights, and pickle-free checkpoints
(``trainer.state``) that a later run resumes mid-epoch, reproducing an uninterrupted run.

Objectives, on the one logit ``s`` of a ``(context, step)`` pair:

- ``pairwise``: −log σ(s⁺ − s⁻) over sibling pairs (Bradley–Terry, the official SRM loss)
- ``bce``: binary cross-entropy of σ(s) against the step's label
- ``regression``: mean squared error of σ(s) against a scalar reward in [0, 1]
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from srm_agent.encoding import encode_pairs, window_of
from trainer.data import Pair, StepRecord, pairs_by_state
from trainer.metrics import auroc, pairwise_accuracy
from trainer import state as ckpt

LOSSES = ("pairwise", "bce", "regression")


@dataclass
class LoopConfig:
    """Hyper-parameters; the defaults are the official SRM recipe's (srm_paper.md §2.1)."""

    loss: str = "pairwise"
    lr: float = 1e-5
    epochs: int = 5
    batch_size: int = 8  # pairs (pairwise) or steps (bce, regression) per micro-batch and process
    grad_accum: int = 1
    warmup: float = 0.1  # fraction of the optimizer steps spent warming up linearly
    grad_clip: float = 1.0
    weight_decay: float = 0.0
    seed: int = 0
    max_length: int = 512
    eval_batch_size: int = 32
    patience: int = 2  # epochs without a better dev metric before stopping; 0 never stops early
    save_every: int = 0  # optimizer steps between training checkpoints; 0: at epoch ends only
    bucket: bool = True  # batches of similar length (less padding); their order is still shuffled
    freeze_embeddings: bool = False  # train the encoder layers and head only (a compact checkpoint)
    by_state: bool = False  # pairwise: a state's sibling pairs stay together, so a batch encodes each step once

    def check(self) -> None:
        if self.loss not in LOSSES:
            raise ValueError(f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "eval_batch_size"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not (self.lr > 0 and 0 <= self.warmup < 1 and self.grad_clip >= 0 and self.patience >= 0
                and self.save_every >= 0 and self.weight_decay >= 0):
            raise ValueError("need lr > 0, 0 <= warmup < 1, grad_clip >= 0, patience >= 0, save_every >= 0 "
                             "and weight_decay >= 0")


@dataclass
class TrainResult:
    """What a run gives back: the model (best dev weights loaded) and its record."""

    model: torch.nn.Module
    history: list[dict[str, Any]]
    best: dict[str, Any] | None
    steps: int
    epochs_run: int
    stopped_early: bool
    resumed_from: str | None = None
    wall_s: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {"history": self.history, "best": self.best, "steps": self.steps, "epochs_run": self.epochs_run,
                "stopped_early": self.stopped_early, "resumed_from": self.resumed_from,
                "wall_s": round(self.wall_s, 1)}


# -- encoding and scoring -----------------------------------------------------------------------------

def effective_max_length(tokenizer, model: torch.nn.Module, max_length: int) -> int:
    """The window, as ``SpeculativeRewardModel`` computes it, so training and scoring agree."""
    return window_of(tokenizer, model, max_length)


def encode(tokenizer, states: Sequence[str], actions: Sequence[str], max_length: int) -> dict[str, torch.Tensor]:
    """Model inputs for ``(state, action)`` pairs: the scorer's own encoding."""
    return encode_pairs(tokenizer, states, actions, max_length).inputs


@torch.no_grad()
def score(model: torch.nn.Module, tokenizer, pairs: Sequence[tuple[str, str]], *, max_length: int,
          batch_size: int, accelerator=None, desc: str = "scoring") -> list[float]:
    """Logits of ``(state, action)`` pairs, in batches of similar length (eval mode, then back)."""
    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
    out = [0.0] * len(pairs)
    main = accelerator is None or accelerator.is_local_main_process
    try:
        for start in tqdm(range(0, len(order), batch_size), desc=desc, unit="batch", leave=False,
                          disable=not main or len(order) <= batch_size):
            idx = order[start:start + batch_size]
            batch = encode(tokenizer, [pairs[i][0] for i in idx], [pairs[i][1] for i in idx], max_length)
            batch = {k: v.to(device) for k, v in batch.items()}
            autocast = accelerator.autocast() if accelerator is not None else torch.autocast("cpu", enabled=False)
            with autocast:
                logits = model(**batch).logits[:, 0].float().cpu().tolist()
            for i, value in zip(idx, logits):
                out[i] = value
    finally:
        model.train(was_training)
    return out


# -- losses and evaluation ----------------------------------------------------------------------------

def objective(logits: torch.Tensor, loss: str, targets: torch.Tensor | None = None) -> torch.Tensor:
    """The loss of a batch. For ``pairwise``, ``targets`` holds a (positive, negative) row of indices into
    ``logits`` per pair; without it the first half of ``logits`` are the positives."""
    logits = logits.float()
    if loss == "pairwise":
        if targets is not None:
            return -F.logsigmoid(logits[targets[:, 0]] - logits[targets[:, 1]]).mean()
        half = logits.shape[0] // 2
        return -F.logsigmoid(logits[:half] - logits[half:]).mean()
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, targets.float())
    return F.mse_loss(torch.sigmoid(logits), targets.float())


def evaluate(model: torch.nn.Module, tokenizer, pairs: Sequence[Pair], records: Sequence[StepRecord], *,
             loss: str, max_length: int, batch_size: int, accelerator=None) -> dict[str, Any]:
    """Dev metrics: pairwise accuracy, AUROC (binary labels only), and the objective's loss."""
    texts = list(dict.fromkeys([(p.context, p.positive) for p in pairs] + [(p.context, p.negative) for p in pairs]
                               + [(r.context, r.step) for r in records]))
    values = dict(zip(texts, score(model, tokenizer, texts, max_length=max_length, batch_size=batch_size,
                                   accelerator=accelerator, desc="dev")))
    pos = [values[(p.context, p.positive)] for p in pairs]
    neg = [values[(p.context, p.negative)] for p in pairs]
    rec = torch.tensor([values[(r.context, r.step)] for r in records])
    labels = torch.tensor([r.label for r in records])
    dev_loss: float | None = None
    if loss == "pairwise" and pairs:
        dev_loss = float(objective(torch.tensor(pos + neg), "pairwise"))
    elif loss != "pairwise" and records:
        dev_loss = float(objective(rec, loss, labels))
    return {"pair_acc": pairwise_accuracy(pos, neg), "auroc": auroc(rec.tolist(), labels.tolist()),
            "loss": dev_loss, "pairs": len(pairs), "records": len(records)}


def _monitor(metrics: dict[str, Any]) -> float | None:
    """Higher is better: dev pairwise accuracy, or minus the dev loss when there are no pairs."""
    if metrics.get("pair_acc") is not None:
        return metrics["pair_acc"]
    return -metrics["loss"] if metrics.get("loss") is not None else None


# -- the loop -----------------------------------------------------------------------------------------

def fingerprint(config: LoopConfig, items: Sequence[Pair | StepRecord], **extra: Any) -> str:
    """What a checkpoint must match to be resumed: the settings and the exact training items."""
    h = hashlib.sha256(json.dumps({**asdict(config), **extra}, sort_keys=True, default=str).encode())
    for item in items:
        h.update(json.dumps(item.to_dict(), sort_keys=True).encode())
    return h.hexdigest()[:24]


def _epoch_seed(seed: int, epoch: int) -> int:
    return int.from_bytes(hashlib.sha256(f"shuffle:{seed}:{epoch}".encode()).digest()[:8], "big") >> 1


def _length(item: Pair | StepRecord) -> int:
    return len(item.context) + (len(item.positive) + len(item.negative) if isinstance(item, Pair) else len(item.step))


def state_order(items: Sequence[Pair], seed: int, bucket: bool) -> list[int]:
    """A shuffled order of the states of ``items``, each state's pairs consecutive; with ``bucket``, states of
    similar length are neighbours (sorted within windows of 200 states), so batches pad little."""
    g = torch.Generator().manual_seed(seed)
    states = pairs_by_state(items)
    runs = [states[k] for k in torch.randperm(len(states), generator=g).tolist()]
    if bucket:
        runs = [run for start in range(0, len(runs), 200)
                for run in sorted(runs[start:start + 200], key=lambda r: len(items[r[0]].context))]
    return [i for run in runs for i in run]


def epoch_order(items: Sequence[Pair | StepRecord], batch_size: int, seed: int, bucket: bool,
                by_state: bool = False) -> list[int]:
    """A shuffled order of ``items``; with ``bucket``, each run of ``batch_size`` holds items of similar
    length (sorted within windows of 50 batches), and the batches themselves come in shuffled order.
    With ``by_state`` (pairs), a state's sibling pairs stay together instead (``state_order``)."""
    if by_state:
        return state_order(items, seed, bucket)
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(items), generator=g).tolist()
    if not bucket:
        return perm
    window = batch_size * 50
    batches = []
    for start in range(0, len(perm), window):
        chunk = sorted(perm[start:start + window], key=lambda i: _length(items[i]))
        batches += [chunk[j:j + batch_size] for j in range(0, len(chunk), batch_size)]
    last = [b for b in batches if len(b) < batch_size]  # a short batch stays last, as without bucketing
    full = [b for b in batches if len(b) == batch_size]
    return [i for k in torch.randperm(len(full), generator=g).tolist() for i in full[k]] + [i for b in last for i in b]


class _Collate:
    def __init__(self, tokenizer, loss: str, max_length: int) -> None:
        self.tokenizer, self.loss, self.max_length = tokenizer, loss, max_length

    def __call__(self, batch: list[Pair | StepRecord]) -> dict[str, torch.Tensor]:
        if self.loss == "pairwise":
            # Each distinct (state, step) is encoded once; the pairs index into the batch's logits.
            index: dict[tuple[str, str], int] = {}
            rows = [[index.setdefault((p.context, step), len(index)) for step in (p.positive, p.negative)]
                    for p in batch]
            enc = encode(self.tokenizer, [c for c, _ in index], [a for _, a in index], self.max_length)
            enc["targets"] = torch.tensor(rows, dtype=torch.long)
            return enc
        enc = encode(self.tokenizer, [r.context for r in batch], [r.step for r in batch], self.max_length)
        enc["targets"] = torch.tensor([r.label for r in batch], dtype=torch.float32)
        return enc


def train(model: torch.nn.Module, tokenizer, items: Sequence[Pair | StepRecord], *, config: LoopConfig,
          accelerator, dev_pairs: Sequence[Pair] = (), dev_records: Sequence[StepRecord] = (),
          state_dir: Path | None = None, resume: bool = False, run_fingerprint: str = "",
          desc: str = "train") -> TrainResult:
    """Train ``model`` in place on ``items`` (pairs for ``pairwise``, step records otherwise)."""
    from accelerate.utils import set_seed
    from transformers import get_linear_schedule_with_warmup

    config.check()
    if not items:
        raise ValueError("no training items")
    kind = Pair if config.loss == "pairwise" else StepRecord
    if not all(isinstance(x, kind) for x in items):
        raise TypeError(f"the {config.loss} objective trains on {kind.__name__} items")
    started = time.time()
    set_seed(config.seed, device_specific=True)
    max_length = effective_max_length(tokenizer, model, config.max_length)
    collate = _Collate(tokenizer, config.loss, max_length)
    accelerator.gradient_accumulation_steps = config.grad_accum
    accelerator.step = 0

    def loader(epoch: int):
        order = epoch_order(items, config.batch_size, _epoch_seed(config.seed, epoch), config.bucket,
                            config.by_state and config.loss == "pairwise")
        # Its own generator, so iterating it never draws from the global RNG that dropout uses.
        dl = DataLoader([items[i] for i in order], batch_size=config.batch_size, shuffle=False,
                        collate_fn=collate, generator=torch.Generator().manual_seed(0))
        return accelerator.prepare_data_loader(dl)

    model.train()
    if config.freeze_embeddings:
        for p in model.base_model.embeddings.parameters():
            p.requires_grad_(False)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=config.lr, weight_decay=config.weight_decay)
    batches = len(loader(0))
    steps_per_epoch = math.ceil(batches / config.grad_accum)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(optimizer, math.ceil(config.warmup * total_steps), total_steps)
    model, optimizer = accelerator.prepare(model, optimizer)
    unwrapped = accelerator.unwrap_model(model)

    progress: dict[str, Any] = {"epoch": 0, "batch": 0, "step": 0, "history": [], "best_metric": None,
                                "best_epoch": None, "bad_epochs": 0, "loss_sum": 0.0, "loss_count": 0,
                                "stopped_early": False, "fingerprint": run_fingerprint}
    best_weights: dict[str, torch.Tensor] | None = None
    resumed_from = None
    found = ckpt.checkpoints(state_dir) if state_dir is not None else []
    if found and not resume:
        raise FileExistsError(f"{state_dir} holds checkpoints of an interrupted run: pass --resume to continue it, "
                              "or delete that folder to start over")
    if resume and found:
        latest = found[-1]
        saved, best_weights = ckpt.load_checkpoint(latest, accelerator=accelerator, model=model, optimizer=optimizer)
        if saved.get("fingerprint") != run_fingerprint:
            raise ValueError(f"{latest} was saved by a run with other data or settings; resume with the same "
                             "command, or delete that folder to start over")
        progress.update({k: saved[k] for k in progress if k in saved})
        if accelerator.process_index != 0:  # the saved loss sums are all processes'; count them once
            progress.update(loss_sum=0.0, loss_count=0)
        scheduler.load_state_dict(saved["scheduler"])
        if accelerator.scaler is not None and saved.get("scaler"):
            accelerator.scaler.load_state_dict(saved["scaler"])
        ckpt.restore_rng(latest, accelerator.process_index)
        resumed_from = str(latest)

    def epoch_loss() -> tuple[float, int]:
        """This epoch's summed training loss and micro-batch count, over all processes."""
        total = accelerator.reduce(torch.tensor([progress["loss_sum"], float(progress["loss_count"])],
                                                dtype=torch.float64, device=accelerator.device), "sum")
        return float(total[0]), int(total[1])

    def save() -> None:
        if state_dir is None:
            return
        loss_sum, loss_count = epoch_loss()
        saved = {**progress, "loss_sum": loss_sum, "loss_count": loss_count, "scheduler": scheduler.state_dict(),
                 "scaler": accelerator.scaler.state_dict() if accelerator.scaler is not None else None}
        ckpt.save_checkpoint(state_dir, progress["step"], accelerator=accelerator, model=model, optimizer=optimizer,
                             progress=saved, best_weights=best_weights)

    bar = tqdm(total=total_steps, initial=progress["step"], desc=desc, unit="step", dynamic_ncols=True,
               disable=not accelerator.is_local_main_process)
    monitored = bool(dev_pairs or dev_records)
    try:
        while progress["epoch"] < config.epochs and not progress["stopped_early"]:
            epoch = progress["epoch"]
            dl = loader(epoch)
            skip = progress["batch"]
            for batch in (accelerator.skip_first_batches(dl, skip) if skip else dl):
                with accelerator.accumulate(model):
                    targets = batch.pop("targets", None)
                    loss = objective(model(**batch).logits[:, 0], config.loss, targets)
                    accelerator.backward(loss)
                    if accelerator.sync_gradients and config.grad_clip > 0:
                        accelerator.clip_grad_norm_(model.parameters(), config.grad_clip)
                    optimizer.step()
                    if accelerator.sync_gradients and not accelerator.optimizer_step_was_skipped:
                        scheduler.step()
                    optimizer.zero_grad()
                progress["batch"] += 1
                progress["loss_sum"] += float(loss.detach())
                progress["loss_count"] += 1
                if accelerator.sync_gradients:
                    progress["step"] += 1
                    bar.update(1)
                    bar.set_postfix(epoch=epoch + 1, loss=f"{progress['loss_sum'] / progress['loss_count']:.4f}",
                                    lr=f"{scheduler.get_last_lr()[0]:.2e}", refresh=False)
                    # The epoch-end checkpoint covers an epoch's last step (one checkpoint per step number).
                    if config.save_every and progress["step"] % config.save_every == 0 and progress["batch"] < batches:
                        save()
            loss_sum, loss_count = epoch_loss()
            row: dict[str, Any] = {"epoch": epoch + 1, "step": progress["step"],
                                   "train_loss": loss_sum / max(loss_count, 1)}
            if monitored:
                metrics = evaluate(unwrapped, tokenizer, dev_pairs, dev_records, loss=config.loss,
                                   max_length=max_length, batch_size=config.eval_batch_size, accelerator=accelerator)
                row.update({f"dev_{k}": v for k, v in metrics.items()})
                value = _monitor(metrics)
                if value is not None and (progress["best_metric"] is None or value > progress["best_metric"]):
                    progress.update(best_metric=value, best_epoch=epoch + 1, bad_epochs=0)
                    best_weights = {k: v.detach().to("cpu").clone() for k, v in unwrapped.state_dict().items()}
                else:
                    progress["bad_epochs"] += 1
                    if config.patience and progress["bad_epochs"] >= config.patience and epoch + 1 < config.epochs:
                        progress["stopped_early"] = True
                if accelerator.is_local_main_process:
                    shown = {k: v for k, v in row.items() if v is not None and k != "epoch"}
                    bar.write(f"epoch {epoch + 1}: " + ", ".join(
                        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}" for k, v in shown.items()))
            progress["history"].append(row)
            progress.update(epoch=epoch + 1, batch=0, loss_sum=0.0, loss_count=0)
            save()
    finally:
        bar.close()
    if best_weights is not None:
        unwrapped.load_state_dict(best_weights)
    history = progress["history"]
    best = next((dict(r) for r in history if r["epoch"] == progress["best_epoch"]), None)
    result = TrainResult(unwrapped, history, best, progress["step"], len(history), progress["stopped_early"],
                         resumed_from, time.time() - started, extra={"window": max_length})
    accelerator.free_memory()
    return result
