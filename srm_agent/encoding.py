"""The one encoding of ``(state, action)`` pairs: the trainer and the scorer both call ``encode_pairs``.

A pair becomes ``[CLS] state [SEP] action [SEP]`` (whatever the tokenizer's pair template is) within
a window of ``max_length`` tokens. When it does not fit:

- an action longer than half the window keeps its start;
- a state keeps its first and its last tokens and loses its middle. A state opens with what it is
  for (the goal, the question) and ends with where it stands (the arrangement, the latest step);
  what lies between (older steps) informs least.

The window a checkpoint was trained with is written into its ``config.json`` (``srm_max_length``)
and served with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch

WINDOW_KEY = "srm_max_length"  # config.json field: the window a checkpoint was trained with
BASE_KEY = "srm_base"  # config.json field of a compact checkpoint: the encoder its tensors are changes of


@dataclass
class Encoded:
    """Model inputs and what had to be cut to fit them into the window."""

    inputs: dict[str, torch.Tensor]
    lengths: list[int]
    states_cut: int = 0
    actions_cut: int = 0


def _kept(seq_ids: list[int | None], room: int) -> tuple[list[int], bool, bool]:
    """Positions to keep of one encoded pair (special tokens always), and whether state/action were cut."""
    state = [i for i, s in enumerate(seq_ids) if s == 0]
    action = [i for i, s in enumerate(seq_ids) if s == 1]
    action_cut = len(action) > room // 2
    if action_cut:
        action = action[: room // 2]
    budget = room - len(action)
    state_cut = len(state) > budget
    if state_cut:
        head = budget // 2
        state = state[:head] + (state[len(state) - (budget - head):] if budget > head else [])
    keep = set(state) | set(action) | {i for i, s in enumerate(seq_ids) if s is None}
    return sorted(keep), state_cut, action_cut


def encode_pairs(tokenizer, states: Sequence[str], actions: Sequence[str], max_length: int) -> Encoded:
    """Padded model inputs for ``(state, action)`` pairs, cut to ``max_length`` as the module says.

    Needs a fast tokenizer (it reads which sequence each token belongs to).
    """
    if len(states) != len(actions):
        raise ValueError(f"{len(states)} states but {len(actions)} actions")
    room = max_length - tokenizer.num_special_tokens_to_add(pair=True)
    if room < 2:
        raise ValueError(f"max_length={max_length} leaves no room for a state and an action")
    full = tokenizer(list(states), list(actions), truncation=False)
    names = [n for n in ("input_ids", "token_type_ids") if n in full]
    rows: dict[str, list[list[int]]] = {n: [] for n in names}
    out = Encoded({}, [])
    for i in range(len(states)):
        keep, state_cut, action_cut = _kept(full.sequence_ids(i), room)
        out.states_cut += state_cut
        out.actions_cut += action_cut
        for n in names:
            rows[n].append([full[n][i][j] for j in keep])
        out.lengths.append(len(keep))
    width = max(out.lengths)
    pad = {"input_ids": tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0,
           "token_type_ids": tokenizer.pad_token_type_id}
    for n in names:
        out.inputs[n] = torch.tensor([r + [pad[n]] * (width - len(r)) for r in rows[n]], dtype=torch.long)
    out.inputs["attention_mask"] = torch.tensor([[1] * k + [0] * (width - k) for k in out.lengths], dtype=torch.long)
    return out


def window_of(tokenizer, model, max_length: int | None) -> int:
    """The window: the smallest of the tokenizer's and the model's limits, the checkpoint's own
    training window (``srm_max_length`` in its config) and ``max_length``."""
    config = model.config
    limits = [tokenizer.model_max_length, getattr(config, "max_position_embeddings", None),
              getattr(config, WINDOW_KEY, None), max_length]
    return min(int(x) for x in limits if x is not None and x > 0)
