"""Generators: propose candidate actions with their log-probabilities, and score given ones.

The log-probability of a candidate is the sum over its tokens under the model's untempered
distribution (raw logits), whatever temperature sampled it: the decision rule compares the
generator's own belief with the SRM's, not the sampler's.
"""

from __future__ import annotations

import copy
import inspect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from srm_agent.devices import resolve_device, resolve_dtype
from srm_agent.errors import CheckpointError, InputError
from srm_agent.rule import Candidate


@dataclass
class GeneratorUsage:
    """Running totals of generator cost: calls, prompt tokens read, tokens generated."""

    calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0

    def to_dict(self) -> dict[str, int]:
        return asdict(self)


@runtime_checkable
class Generator(Protocol):
    """What the search needs from a generator (DESIGN §3)."""

    usage: GeneratorUsage

    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> list[Candidate]:
        """Sample ``k`` continuations of ``prompt``, each with its summed token log-prob."""
        ...

    def score_choices(self, prompt: str, choices: Sequence[str]) -> list[Candidate]:
        """The log-prob of each given continuation of ``prompt``."""
        ...


class TransformersGenerator:
    """A Hugging Face causal LM as a generator, with token accounting on every call.

    ``chat=True`` wraps the prompt as one user turn with the tokenizer's chat template;
    the default treats it as raw text to continue (few-shot prompts). ``score_choices`` keeps
    the KV caches of the last ``prefix_cache_size`` prompts and reuses the longest shared prefix;
    usage still counts every prompt token, as an API would bill them.
    """

    def __init__(self, model: PreTrainedModel, tokenizer, *, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, chat: bool = False, prefix_cache_size: int = 4) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.chat = chat
        self.usage = GeneratorUsage()
        self._max_positions = getattr(model.config, "max_position_embeddings", None)
        self._pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
        eos = model.generation_config.eos_token_id if model.generation_config is not None else None
        eos = tokenizer.eos_token_id if eos is None else eos
        self._eos_ids = set(eos if isinstance(eos, list) else [eos]) - {None}
        forward_args = inspect.signature(model.forward).parameters
        self._cache_kw = "cache" if "cache" in forward_args else "past_key_values"
        self._last_logits_only = {"logits_to_keep": 1} if "logits_to_keep" in forward_args else {}
        self.prefix_cache_size = prefix_cache_size
        self._prefix_kv: OrderedDict[tuple[int, ...], Any] = OrderedDict()

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, gguf_file: str | None = None,
                        device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                        chat: bool = False, trust_remote_code: bool = False) -> TransformersGenerator:
        """Load a causal LM from a local folder or a hub id (``gguf_file`` for a GGUF file inside it)."""
        name = str(path_or_id)
        local = Path(name).expanduser()
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": local.exists()}
        if gguf_file is not None:
            kwargs["gguf_file"] = gguf_file
        try:
            tokenizer = AutoTokenizer.from_pretrained(str(local) if local.exists() else name, **kwargs)
            model = AutoModelForCausalLM.from_pretrained(str(local) if local.exists() else name, **kwargs)
        except (OSError, ValueError) as exc:
            raise CheckpointError(name, f"cannot load as a causal LM ({exc}); pass a local model folder, or use "
                                        "srm_agent.default_generator() for the embedded one") from exc
        return cls(model, tokenizer, device=device, dtype=dtype, chat=chat)

    # -- prompts -------------------------------------------------------------------------------

    def _encode_prompt(self, prompt: str, reserve: int) -> torch.Tensor:
        if not isinstance(prompt, str) or not prompt:
            raise InputError("prompt", "must be a non-empty string")
        if self.chat:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(prompt)["input_ids"]
        if self._max_positions and len(ids) + reserve > self._max_positions:
            raise InputError("prompt", f"{len(ids)} tokens plus {reserve} to come exceed the model's "
                                       f"{self._max_positions} positions")
        return torch.tensor([ids], device=self.device)

    def _encode_choices(self, choices: Sequence[str]) -> list[list[int]]:
        """Each choice's token ids as it continues a prompt (no special tokens); InputError names a bad one."""
        if len(choices) == 0:
            raise InputError("choices", "must hold at least one choice")
        choice_ids = []
        for i, choice in enumerate(choices):
            ids = self.tokenizer(choice, add_special_tokens=False)["input_ids"] if isinstance(choice, str) else []
            if not ids:
                raise InputError(f"choices[{i}]", "must be a non-empty string")
            choice_ids.append(ids)
        return choice_ids

    # -- propose -------------------------------------------------------------------------------

    @torch.inference_mode()
    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> list[Candidate]:
        """Sample ``k`` continuations; each ends at EOS or just before the first ``stop`` string.

        ``temperature=0`` decodes greedily once and returns that candidate ``k`` times. The prompt
        is read once (reusing the longest cached prefix, as ``score_choices`` does) and its KV
        cache is shared by the ``k`` samples.
        """
        if k < 1:
            raise InputError("k", f"must be >= 1, got {k}")
        if not temperature >= 0:
            raise InputError("temperature", f"must be >= 0, got {temperature}")
        if max_new_tokens < 1:
            raise InputError("max_new_tokens", f"must be >= 1, got {max_new_tokens}")
        stops = [s for s in (stop or []) if s]
        prompt_ids = self._encode_prompt(prompt, reserve=max_new_tokens)
        sampling = temperature > 0
        rows = k if sampling else 1
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": max_new_tokens,
            "do_sample": sampling,
            "output_logits": True,
            "return_dict_in_generate": True,
            "pad_token_id": self._pad_id,
        }
        if sampling:  # pure temperature sampling: no top-k / top-p truncation from a model's defaults
            gen_kwargs.update(temperature=temperature, top_k=0, top_p=1.0)
        if stops:
            gen_kwargs.update(stop_strings=stops, tokenizer=self.tokenizer)
        if prompt_ids.shape[1] > 1:  # generate runs the last prompt token itself, for its logits
            _, cache = self._prefill(prompt_ids[0, :-1].tolist())
            cache.batch_repeat_interleave(rows)
            gen_kwargs[self._cache_kw] = cache
        batch = prompt_ids.expand(rows, -1)
        with torch.random.fork_rng(devices=[self.device] if self.device.type == "cuda" else []):
            if seed is not None:
                torch.manual_seed(seed)
            out = self.model.generate(batch, attention_mask=torch.ones_like(batch), **gen_kwargs)
        new_tokens = out.sequences[:, prompt_ids.shape[1]:]
        raw_logits = torch.stack(out.logits, dim=1).float()  # raw, untempered
        token_logp = torch.log_softmax(raw_logits, dim=-1).gather(-1, new_tokens[..., None]).squeeze(-1)
        candidates = []
        for row in range(new_tokens.shape[0]):
            tokens = new_tokens[row].tolist()
            end, text = self._cut(tokens, stops)
            candidates.append(Candidate(text=text, logprob=float(token_logp[row, :end].sum()), num_tokens=end))
        self.usage.calls += 1
        self.usage.prompt_tokens += prompt_ids.shape[1]
        self.usage.generated_tokens += sum(c.num_tokens for c in candidates)
        return candidates if sampling else candidates * k

    def _cut(self, tokens: list[int], stops: list[str]) -> tuple[int, str]:
        """Where a sampled continuation ends (EOS included) and its text (the stop string excluded)."""
        end = next((i + 1 for i, t in enumerate(tokens) if t in self._eos_ids), len(tokens))
        body = tokens[:end - 1] if tokens[end - 1] in self._eos_ids else tokens[:end]
        text = self.tokenizer.decode(body, skip_special_tokens=True)
        if stops and any(s in text for s in stops):
            for n in range(1, len(body) + 1):
                partial = self.tokenizer.decode(body[:n], skip_special_tokens=True)
                hits = [partial.find(s) for s in stops if s in partial]
                if hits:
                    return n, partial[: min(hits)]
        return end, text

    # -- score_choices --------------------------------------------------------------------------

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, Any]:
        """The prompt's last logits and a KV cache of the whole prompt (the caller may modify it).

        Tree search asks about many prompts that share a long few-shot prefix; the KV cache of
        the longest prefix already computed is reused, so only the new tail is run.
        """
        start, cache = 0, None
        if self._prefix_kv:
            key = max(self._prefix_kv, key=lambda k: common_prefix_length(k, ids))
            start = min(common_prefix_length(key, ids), len(ids) - 1)  # run at least the last token for its logits
            if start > 0:
                cache = copy.deepcopy(self._prefix_kv[key])
                if len(key) > start:
                    cache.crop(start - len(key))  # a negative count removes that many tokens from the end
                self._prefix_kv.move_to_end(key)
        kwargs = {self._cache_kw: cache} if cache is not None else {}
        out = self.model(input_ids=torch.tensor([ids[start:]], device=self.device), use_cache=True,
                         **self._last_logits_only, **kwargs)
        full = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        if self.prefix_cache_size > 0:
            self._prefix_kv[tuple(ids)] = copy.deepcopy(full)
            while len(self._prefix_kv) > self.prefix_cache_size:
                self._prefix_kv.popitem(last=False)
        return out.logits[0, -1], full

    @torch.inference_mode()
    def score_choices(self, prompt: str, choices: Sequence[str]) -> list[Candidate]:
        """Log-prob of each continuation from one prompt forward whose KV cache all choices share."""
        choice_ids = self._encode_choices(choices)
        longest = max(len(ids) for ids in choice_ids)
        prompt_ids = self._encode_prompt(prompt, reserve=longest)
        n_prompt = prompt_ids.shape[1]

        last_logits, cache = self._prefill(prompt_ids[0].tolist())
        first_logp = torch.log_softmax(last_logits.float(), dim=-1)
        cache.batch_repeat_interleave(len(choices))

        batch = torch.full((len(choices), longest), self._pad_id, dtype=torch.long, device=self.device)
        mask = torch.zeros((len(choices), n_prompt + longest), dtype=torch.long, device=self.device)
        mask[:, :n_prompt] = 1
        for i, ids in enumerate(choice_ids):
            batch[i, : len(ids)] = torch.tensor(ids, device=self.device)
            mask[i, n_prompt: n_prompt + len(ids)] = 1
        positions = torch.arange(n_prompt, n_prompt + longest, device=self.device).expand(len(choices), -1)
        rest = self.model(input_ids=batch, attention_mask=mask, position_ids=positions, use_cache=False,
                          **{self._cache_kw: cache})
        rest_logp = torch.log_softmax(rest.logits.float(), dim=-1)

        candidates = []
        for i, (choice, ids) in enumerate(zip(choices, choice_ids)):
            total = first_logp[ids[0]]
            if len(ids) > 1:
                nxt = torch.tensor(ids[1:], device=self.device)
                total = total + rest_logp[i, : len(ids) - 1].gather(-1, nxt[:, None]).sum()
            candidates.append(Candidate(text=choice, logprob=float(total), num_tokens=len(ids)))
        self.usage.calls += 1
        self.usage.prompt_tokens += n_prompt + sum(len(ids) for ids in choice_ids)
        return candidates


def from_langchain(llm: Any, *, device: str | torch.device | None = None) -> TransformersGenerator:
    """Use a LangChain ``HuggingFacePipeline`` or ``ChatHuggingFace`` as the proposer.

    The decision rule needs token log-probs, so the LangChain object must wrap a local
    transformers pipeline; its model and tokenizer are used directly (a chat model keeps
    its chat template).
    """
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline

    chat = isinstance(llm, ChatHuggingFace)
    inner = llm.llm if chat else llm
    pipeline = getattr(inner, "pipeline", None) if isinstance(inner, HuggingFacePipeline) else None
    if pipeline is None:
        raise TypeError(f"{type(llm).__name__} gives no token log-probs: pass a HuggingFacePipeline or a "
                        "ChatHuggingFace built on one (a local transformers text-generation pipeline)")
    tokenizer = llm.tokenizer if chat and llm.tokenizer is not None else pipeline.tokenizer
    return TransformersGenerator(pipeline.model, tokenizer, device=device or pipeline.model.device,
                                 dtype=pipeline.model.dtype, chat=chat)


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items two token sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
