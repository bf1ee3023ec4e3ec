"""The finished checkpoint: an SRM folder with a model card and its training metrics, whole or absent.

Everything is written into a hidden temporary folder beside ``out`` and renamed into place at the
end, so a run killed at any moment leaves either no ``out`` or a complete one (a stale temporary
folder, ``.<name>.*``, is safe to delete).
"""

from __future__ import annotations

import copy
import json
import platform
import time
from pathlib import Path
from typing import Any

import torch

from srm_agent.devices import resolve_dtype


def check_out_dir(out: Path, overwrite: bool) -> None:
    """Refuse to replace an existing checkpoint unless asked (before hours of training, not after)."""
    if out.exists() and not overwrite and (not out.is_dir() or any(out.iterdir())):
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it, or choose another --out")


def _fmt(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def model_card(info: dict[str, Any]) -> str:
    """A README.md for the checkpoint: what it was trained from, on what, how, and how well."""
    lines = [f"# {info['title']}", "", info.get("summary", ""), "",
             "Load it with `SpeculativeRewardModel.from_pretrained(PATH)` or pass `--srm PATH`.", "",
             "| | |", "| --- | --- |",
             f"| base model | `{info['base']}` |",
             f"| objective | {info['objective']} |",
             f"| optimizer steps | {info['steps']} ({info['epochs_run']} epochs"
             f"{', stopped early' if info['stopped_early'] else ''}) |",
             f"| trained | {info['date']}, {info['wall_s']:.0f} s |", ""]
    lines += ["## Data", "", "| file | format | records | unrated | 0s dropped | duplicates merged |",
              "| --- | --- | ---: | ---: | ---: | ---: |"]
    for d in info["data"]:
        lines.append(f"| `{d['path']}` | {d['format']} | {d['records']} | {d['unrated']} | {d['zero_dropped']} | "
                     f"{d['merged_duplicates']} |")
    split = info["split"]
    lines += ["", f"Split by problem (seed {split['seed']}, dev fraction {split['dev_fraction']}): "
                  f"train {split['train_groups']} problems, {split['train_pairs']} pairs and "
                  f"{split['train_records']} steps used (of {split['train_pairs_available']} and "
                  f"{split['train_records_available']}); dev {split['dev_groups']} problems, "
                  f"{split['dev_pairs']} pairs, {split['dev_records']} steps.", ""]
    lines += ["## Settings", "", "| setting | value |", "| --- | --- |"]
    lines += [f"| {k} | {v:g} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in info["config"].items()]
    lines += ["", "## Dev metrics", ""]
    history = info["history"]
    if history and any(k.startswith("dev_") for k in history[0]):
        lines += ["| epoch | step | train loss | dev loss | dev pairwise acc | dev AUROC |",
                  "| ---: | ---: | ---: | ---: | ---: | ---: |"]
        for row in history:
            cells = [row["epoch"], row["step"], row["train_loss"], row.get("dev_loss"), row.get("dev_pair_acc"),
                     row.get("dev_auroc")]
            lines.append("| " + " | ".join(_fmt(c) for c in cells) + " |")
        best = info.get("best")
        if best:
            lines += ["", f"The weights are those of epoch {best['epoch']} (best dev metric)."]
    else:
        lines.append("No dev split (dev fraction 0): the weights are those of the last epoch.")
    for name, text in info.get("sections", {}).items():
        lines += ["", f"## {name}", "", text]
    lines += ["", "## Command", "", "```bash", info["command"], "```", ""]
    return "\n".join(lines)


def environment() -> dict[str, str]:
    import transformers

    return {"python": platform.python_version(), "torch": torch.__version__, "transformers": transformers.__version__}


DEV_PAIRS = "dev_pairs.jsonl"  # a checkpoint's dev pairs: {context, positive, negative} per line


def dev_pairs_text(pairs) -> str:
    """The dev pairs as the checkpoint keeps them (``DEV_PAIRS``)."""
    return "".join(json.dumps({"context": p.context, "positive": p.positive, "negative": p.negative}) + "\n"
                   for p in pairs)


def dev_pair_accuracy(folder: str | Path) -> tuple[float, int]:
    """The dev pairwise accuracy of a checkpoint recomputed from its own files (its weights as stored, its
    ``DEV_PAIRS``), and the number of pairs: the check that what ships is what the card measured."""
    from srm_agent.srm import SpeculativeRewardModel
    from trainer.metrics import pairwise_accuracy

    path = Path(folder) / DEV_PAIRS
    if not path.is_file():
        raise FileNotFoundError(f"{path}: this checkpoint keeps no dev pairs")
    pairs = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    srm = SpeculativeRewardModel.from_pretrained(str(folder), device="cpu", dtype="float32")
    texts = list(dict.fromkeys((p["context"], a) for p in pairs for a in (p["positive"], p["negative"])))
    values = dict(zip(texts, srm.score_pairs(texts)))  # the scorer's own length-sorted batches
    accuracy = pairwise_accuracy([values[(p["context"], p["positive"])] for p in pairs],
                                 [values[(p["context"], p["negative"])] for p in pairs])
    return accuracy, len(pairs)


def export_checkpoint(model: torch.nn.Module, tokenizer, out: Path, *, card: dict[str, Any],
                      metrics: dict[str, Any], dtype: str = "float32", overwrite: bool = False,
                      window: int | None = None, delta_base: str | None = None, dev_pairs=()) -> Path:
    """Write the SRM (safetensors), ``README.md``, ``training_metrics.json`` and the dev pairs (``DEV_PAIRS``,
    when there are any) to ``out`` atomically.

    ``window`` (the training window) goes into ``config.json`` so the scorer serves with it. With
    ``delta_base`` ("embedded" or an encoder folder) only the tensors that differ from that encoder
    are written: a compact checkpoint that loads the base first.
    """
    from srm_agent.encoding import WINDOW_KEY
    from srm_agent.srm import SpeculativeRewardModel

    out = Path(out)
    check_out_dir(out, overwrite)
    target_dtype = resolve_dtype(dtype, torch.device("cpu"))
    model = copy.deepcopy(model.to("cpu"))  # the caller's model keeps its weights, dtype and config
    if window is not None:
        setattr(model.config, WINDOW_KEY, int(window))
    card = {**card, "date": card.get("date") or time.strftime("%Y-%m-%d %H:%M:%S")}
    files = {"README.md": model_card(card),
             "training_metrics.json": json.dumps({**metrics, "environment": environment()}, indent=2)}
    if dev_pairs:
        files[DEV_PAIRS] = dev_pairs_text(dev_pairs)
    if delta_base is None:
        return SpeculativeRewardModel(model, tokenizer, device="cpu", dtype=target_dtype).save_pretrained(
            out, extra_files=files)
    return _export_delta(model, tokenizer, out, files, target_dtype, delta_base)


def _export_delta(model: torch.nn.Module, tokenizer, out: Path, files: dict[str, str], dtype: torch.dtype,
                  base: str) -> Path:
    from safetensors.torch import save_file
    from transformers import AutoModelForSequenceClassification

    from srm_agent.encoding import BASE_KEY as base_key
    from srm_agent.fsio import atomic_dir
    from srm_agent.srm import encoder_path, quiet_transformers

    with quiet_transformers():
        reference = AutoModelForSequenceClassification.from_pretrained(encoder_path(base), num_labels=1,
                                                                       local_files_only=True)
    theirs = reference.state_dict()
    prefix = f"{model.base_model_prefix}."
    changed = {k: v.detach().to(dtype).contiguous() for k, v in model.state_dict().items()
               if not k.startswith(prefix) or k not in theirs or not torch.equal(v.float(), theirs[k].float())}
    setattr(model.config, base_key, base)
    with atomic_dir(out) as tmp:
        model.config.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file(changed, str(tmp / "model.safetensors"), metadata={"format": "pt", base_key: base})
        (tmp / "model.safetensors").chmod(0o644)
        for name, text in files.items():
            (tmp / name).write_text(text, encoding="utf-8")
    return out
