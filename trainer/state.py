"""Resumable training checkpoints without pickle: tensors in safetensors, everything else in JSON.

``accelerate``'s ``save_state`` pickles the optimizer, scheduler and RNG states (``torch.save``),
so a checkpoint from elsewhere could run code on load. Here a checkpoint is a folder
``step-<N>/`` under the run's state directory:

- ``model.safetensors``: the (unwrapped) model's weights
- ``optimizer.safetensors`` + ``optimizer.json``: the optimizer's tensors and the rest of its state
- ``best.safetensors``: the best weights so far by the dev metric (when there is one)
- ``rng-<process>.safetensors`` + ``rng-<process>.json``: torch/CUDA, numpy and Python RNG states
- ``state.json``: epoch, batch within the epoch, step, history, early-stopping counters, the
  scheduler's and the fp16 grad scaler's state, and the run's fingerprint

Each is written into a hidden temporary folder that is renamed into place when complete, so a
killed run leaves whole checkpoints only (a stale temporary folder is ignored and cleaned up).
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, load_model, save_file, save_model

from srm_agent.fsio import publish_dir

STATE_VERSION = 1
PREFIX = "step-"


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.integer, np.floating)):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a training checkpoint's JSON")


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=1, default=_json_default))


def _cpu(tensor: torch.Tensor) -> torch.Tensor:
    return tensor.detach().to("cpu").contiguous()


def optimizer_to_files(state: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split ``optimizer.state_dict()`` into tensors (safetensors) and JSON."""
    tensors: dict[str, torch.Tensor] = {}
    meta: dict[str, Any] = {}
    for index, slots in state["state"].items():
        meta[str(index)] = {}
        for name, value in slots.items():
            if torch.is_tensor(value):
                tensors[f"{index}.{name}"] = _cpu(value)
                meta[str(index)][name] = {"tensor": f"{index}.{name}"}
            else:
                meta[str(index)][name] = {"value": value}
    return tensors, {"state": meta, "param_groups": state["param_groups"]}


def optimizer_from_files(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state = {int(index): {name: tensors[slot["tensor"]] if "tensor" in slot else slot["value"]
                          for name, slot in slots.items()} for index, slots in meta["state"].items()}
    groups = [{**g, "betas": tuple(g["betas"])} if "betas" in g else g for g in meta["param_groups"]]
    return {"state": state, "param_groups": groups}


def rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states, as tensors and JSON."""
    tensors = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"cuda.{i}"] = s
    name, keys, pos, has_gauss, gauss = np.random.get_state()
    tensors["numpy"] = torch.from_numpy(keys.astype(np.int64))
    version, internal, python_gauss = random.getstate()
    return tensors, {"numpy": [name, int(pos), int(has_gauss), float(gauss)],
                     "python": [version, list(internal), python_gauss]}


def set_rng_state(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[f"cuda.{i}"] for i in range(len(tensors)) if f"cuda.{i}" in tensors]
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, internal, python_gauss = meta["python"]
    random.setstate((version, tuple(internal), python_gauss))


def checkpoints(state_dir: Path) -> list[Path]:
    """Complete checkpoints, oldest first (temporary folders start with a dot and are skipped)."""
    if not state_dir.is_dir():
        return []
    found = [p for p in state_dir.iterdir() if p.is_dir() and p.name.startswith(PREFIX)
             and p.name[len(PREFIX):].isdigit() and (p / "state.json").is_file()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX):]))


def save_checkpoint(state_dir: Path, step: int, *, accelerator, model: torch.nn.Module, optimizer,
                    progress: dict[str, Any], best_weights: dict[str, torch.Tensor] | None, keep: int = 1) -> Path:
    """Write ``step-<step>/`` (all processes call this; only the main one writes shared files)."""
    final = state_dir / f"{PREFIX}{step:08d}"
    tmp = state_dir / f".{PREFIX}{step:08d}.tmp"
    main = accelerator.is_main_process
    try:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)  # left by a run killed while saving
            tmp.mkdir(parents=True)
        accelerator.wait_for_everyone()
        tensors, meta = rng_state()
        save_file(tensors, str(tmp / f"rng-{accelerator.process_index}.safetensors"))
        write_json(tmp / f"rng-{accelerator.process_index}.json", meta)
        accelerator.wait_for_everyone()
        if main:
            save_model(accelerator.unwrap_model(model), str(tmp / "model.safetensors"))
            opt_tensors, opt_meta = optimizer_to_files(optimizer.state_dict())
            save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
            write_json(tmp / "optimizer.json", opt_meta)
            if best_weights is not None:
                save_file(best_weights, str(tmp / "best.safetensors"))
            write_json(tmp / "state.json", {"version": STATE_VERSION, "num_processes": accelerator.num_processes,
                                            **progress})
            publish_dir(tmp, final)
            for old in checkpoints(state_dir)[:-keep]:
                shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        if main:
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    accelerator.wait_for_everyone()
    return final


def load_checkpoint(path: Path, *, accelerator, model: torch.nn.Module, optimizer
                    ) -> tuple[dict[str, Any], dict[str, torch.Tensor] | None]:
    """Restore weights and optimizer from ``path``; returns (progress, best weights).

    RNG states are restored separately (``restore_rng``), right before training goes on.
    """
    progress = json.loads((path / "state.json").read_text())
    if progress.get("version") != STATE_VERSION:
        raise ValueError(f"{path}: checkpoint format version {progress.get('version')}, expected {STATE_VERSION}")
    if progress["num_processes"] != accelerator.num_processes:
        raise ValueError(f"{path}: saved by {progress['num_processes']} processes, resumed with "
                         f"{accelerator.num_processes}; resume with the same launch configuration")
    load_model(accelerator.unwrap_model(model), str(path / "model.safetensors"))
    optimizer.load_state_dict(optimizer_from_files(load_file(str(path / "optimizer.safetensors")),
                                                   json.loads((path / "optimizer.json").read_text())))
    best = load_file(str(path / "best.safetensors")) if (path / "best.safetensors").is_file() else None
    return progress, best


def restore_rng(path: Path, process_index: int) -> None:
    set_rng_state(load_file(str(path / f"rng-{process_index}.safetensors")),
                  json.loads((path / f"rng-{process_index}.json").read_text()))
