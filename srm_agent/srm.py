"""The SRM scorer: any one-output sequence classifier, scoring ``(state, action)`` pairs.

It holds no search logic: it turns pairs into logits, batched with dynamic padding, encoded by
``srm_agent.encoding.encode_pairs`` exactly as the trainer encodes them.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import torch
from safetensors import SafetensorError
from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer, PreTrainedModel

from srm_agent.devices import resolve_device, resolve_dtype
from srm_agent.encoding import BASE_KEY, Encoded, encode_pairs, window_of
from srm_agent.errors import CheckpointError
from srm_agent.fsio import atomic_dir
from srm_agent.sources import describe_load_error, model_source

log = logging.getLogger(__name__)

# Config fields that describe where or how a model was saved, not what it computes.
_VOLATILE_CONFIG_KEYS = ("_name_or_path", "transformers_version", "dtype", "torch_dtype", "architectures")


def encoder_path(spec: str) -> str:
    """A model folder for ``spec``: "embedded" names the embedded MiniLM backbone, anything else is itself."""
    if spec != "embedded":
        return spec
    from srm_agent.embedded import embedded_srm_backbone

    return str(embedded_srm_backbone())


@contextlib.contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report of a base whose head is replaced on purpose."""
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)


def _shape(size: Sequence[int]) -> str:
    return "x".join(str(int(n)) for n in size) or "scalar"


class SpeculativeRewardModel:
    """Scores ``(state, action)`` pairs with a one-logit ``AutoModelForSequenceClassification``."""

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer,
        *,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        max_length: int | None = None,
        batch_size: int = 32,
        head_trained: bool = True,
    ) -> None:
        if getattr(model.config, "num_labels", 1) != 1:
            raise ValueError(f"an SRM has one output; this model has num_labels={model.config.num_labels}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.max_length = window_of(tokenizer, model, max_length)
        self.batch_size = batch_size
        self.head_trained = head_trained
        self._fingerprint: str | None = None
        self._warned_state_cut = False
        self._warned_action_cut = False

    @classmethod
    def from_pretrained(
        cls,
        path_or_id: str | Path,
        device: str | torch.device | None = None,
        dtype: str | torch.dtype | None = None,
        *,
        max_length: int | None = None,
        batch_size: int = 32,
        trust_remote_code: bool = False,
    ) -> SpeculativeRewardModel:
        """Load an SRM from a local folder (safetensors) or a hub id (offline: one from the local cache).

        A plain encoder without a classification head (the embedded MiniLM) loads too: its
        one-logit head is initialised with a fixed seed and ``head_trained`` is False.
        """
        name = str(path_or_id)
        source, local_only = model_source(name, "SRM checkpoint")
        try:
            config = AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code, local_files_only=local_only)
        except (OSError, ValueError) as exc:
            raise CheckpointError(name, f"cannot read a model config: {describe_load_error(exc)}") from exc
        if getattr(config, BASE_KEY, None):
            return cls._from_delta(name, source, config, device=device, dtype=dtype, max_length=max_length,
                                   batch_size=batch_size)
        architectures = getattr(config, "architectures", None) or []
        is_classifier = any(a.endswith("ForSequenceClassification") for a in architectures)
        if is_classifier and config.num_labels != 1:
            raise CheckpointError(name, f"a sequence classifier with {config.num_labels} outputs; an SRM has one")
        try:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(0)  # a new head is the same on every load, so its fingerprint is stable
                model, info = AutoModelForSequenceClassification.from_pretrained(
                    source,
                    num_labels=1,
                    use_safetensors=True,
                    trust_remote_code=trust_remote_code,
                    local_files_only=local_only,
                    output_loading_info=True,
                    ignore_mismatched_sizes=True,  # reported below, naming the tensor
                )
            tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=trust_remote_code,
                                                      local_files_only=local_only)
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(name, f"cannot load as an SRM: {describe_load_error(exc)}") from exc
        mismatched = sorted(info.get("mismatched_keys") or [])
        if mismatched:
            key, stored, expected = mismatched[0]
            more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
            raise CheckpointError(name, f"tensor {key} has shape {_shape(stored)} in the checkpoint but "
                                        f"{_shape(expected)} in the model its config.json describes{more}")
        missing = sorted(info.get("missing_keys") or [])
        prefix = f"{model.base_model_prefix}."
        body = [key for key in missing if key.startswith(prefix)]
        if body:
            raise CheckpointError(name, f"{len(body)} encoder weights are missing (e.g. {body[0]}): not an SRM "
                                        f"checkpoint of architecture {type(model).__name__}")
        head_trained = not missing
        if not head_trained:
            log.warning("SRM %s: the scoring head is newly initialised (%s); its scores mean nothing until it is "
                        "trained with the trainer", name, ", ".join(missing))
        return cls(model, tokenizer, device=device, dtype=dtype, max_length=max_length, batch_size=batch_size,
                   head_trained=head_trained)

    @classmethod
    def _from_delta(cls, name: str, folder: str, config, **kwargs) -> SpeculativeRewardModel:
        """A compact checkpoint: only the tensors that differ from a base encoder, which loads first.

        ``config.json`` names the base (``srm_base``: "embedded" for the embedded MiniLM, else a folder).
        """
        from safetensors.torch import load_file

        base = encoder_path(getattr(config, BASE_KEY))
        base_path = Path(base) if Path(base).is_absolute() else Path(folder) / base
        if not (base_path / "config.json").is_file():
            raise CheckpointError(name, f"its base encoder {base} ({BASE_KEY} in config.json) is not a model folder")
        files = sorted(Path(folder).glob("*.safetensors"))
        try:
            with torch.random.fork_rng(devices=[]), quiet_transformers():
                torch.manual_seed(0)
                model = AutoModelForSequenceClassification.from_pretrained(
                    base_path, config=config, use_safetensors=True, local_files_only=True)
            delta = {k: v for f in files for k, v in load_file(f).items()}
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
        except (OSError, ValueError, SafetensorError) as exc:
            raise CheckpointError(name, f"cannot load as a compact SRM: {describe_load_error(exc)}") from exc
        own = model.state_dict()
        for key, tensor in delta.items():
            if key not in own:
                raise CheckpointError(name, f"tensor {key} is not part of {type(model).__name__}")
            if tuple(own[key].shape) != tuple(tensor.shape):
                raise CheckpointError(name, f"tensor {key} has shape {_shape(tensor.shape)} in the checkpoint but "
                                            f"{_shape(own[key].shape)} in the model its config.json describes")
        head = [k for k in own if not k.startswith(f"{model.base_model_prefix}.")]
        if any(k not in delta for k in head):
            raise CheckpointError(name, "a compact SRM checkpoint must hold its scoring head "
                                        f"({', '.join(k for k in head if k not in delta)} missing)")
        model.load_state_dict({k: v.to(own[k].dtype) for k, v in delta.items()}, strict=False)
        return cls(model, tokenizer, head_trained=True, **kwargs)

    def save_pretrained(self, directory: str | Path, *, extra_files: Mapping[str, str] | None = None) -> Path:
        """Write safetensors weights, config and tokenizer; the folder appears whole or not at all.

        ``extra_files`` (name -> text, e.g. a model card) are written into the same folder before it
        appears, so a checkpoint is never seen without them.
        """
        target = Path(directory)
        with atomic_dir(target) as tmp:
            self.model.save_pretrained(tmp, safe_serialization=True)
            self.tokenizer.save_pretrained(tmp)
            for name, text in (extra_files or {}).items():
                (tmp / name).write_text(text, encoding="utf-8")
        return target

    @property
    def fingerprint(self) -> str:
        """A stable hash of the weights, config, tokenizer vocabulary and max length (for cache keys).

        Computed once; after changing the weights in place, call ``refresh_fingerprint()``.
        """
        if self._fingerprint is None:
            self._fingerprint = self._compute_fingerprint()
        return self._fingerprint

    def refresh_fingerprint(self) -> str:
        self._fingerprint = None
        return self.fingerprint

    def _compute_fingerprint(self) -> str:
        h = hashlib.sha256()
        config = self.model.config.to_dict()
        for key in _VOLATILE_CONFIG_KEYS:
            config.pop(key, None)
        h.update(repr(sorted(config.items(), key=lambda kv: kv[0])).encode())
        h.update(f"max_length={self.max_length}".encode())
        vocab = sorted(self.tokenizer.get_vocab().items())
        h.update(repr(vocab).encode())
        for name, tensor in sorted(self.model.state_dict().items()):
            t = tensor.detach().cpu().contiguous()
            h.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
            h.update(t.view(torch.uint8).numpy().tobytes() if t.numel() else b"")
        return h.hexdigest()[:32]

    def score(self, state: str, actions: Sequence[str]) -> list[float]:
        """SRM logits for each action taken in ``state``."""
        return self.score_pairs([(state, a) for a in actions])

    @torch.inference_mode()
    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """SRM logits for ``(state, action)`` pairs, in batches of similar length (``encode_pairs``)."""
        if not pairs:
            return []
        by_length = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]) + len(pairs[i][1]))
        out = [0.0] * len(pairs)
        for start in range(0, len(by_length), self.batch_size):
            idx = by_length[start:start + self.batch_size]
            enc = encode_pairs(self.tokenizer, [pairs[i][0] for i in idx], [pairs[i][1] for i in idx],
                               self.max_length)
            self._warn_cuts(enc)
            inputs = {k: v.to(self.device) for k, v in enc.inputs.items()}
            logits = self.model(**inputs).logits[:, 0].float().cpu().tolist()
            for i, value in zip(idx, logits):
                out[i] = value
        return out

    def _warn_cuts(self, enc: Encoded) -> None:
        if enc.states_cut and not self._warned_state_cut:
            log.warning("SRM: a state longer than the %d-token window lost its middle (its start and end are kept); "
                        "this warning is shown once", self.max_length)
            self._warned_state_cut = True
        if enc.actions_cut and not self._warned_action_cut:
            log.warning("SRM: an action longer than half the %d-token window was cut (its start is kept); this "
                        "warning is shown once", self.max_length)
            self._warned_action_cut = True
