"""A Hugging Face causal LM as a generator: sampled proposals and shared-prefix choice scoring.

Both calls read a prompt once: the KV cache of the longest prompt prefix already computed is reused
(tree search asks about many prompts that share a long few-shot prefix), and the K samples or K
choices share the prompt's cache. Sampling runs its own decoding loop with a ``torch.Generator``
per call, so a seed fixes the samples without touching the process-wide RNG, and several threads
may use one generator at once (the prefix cache is locked).
"""

from __future__ import annotations

import copy
import inspect
import threading
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from srm_agent.devices import resolve_device, resolve_dtype
from srm_agent.errors import CheckpointError, InputError, PromptTooLong
from srm_agent.generators.base import Generation, Usage, check_sampling, cut_at_stop, stop_seen
from srm_agent.rule import Candidate
from srm_agent.sources import describe_load_error, model_source


class TransformersGenerator:
    """A Hugging Face causal LM as a generator (``srm_agent.generators.Generator``).

    ``chat=True`` wraps the prompt as one user turn with the tokenizer's chat template; the default
    treats it as raw text to continue (few-shot prompts). The KV caches of the last
    ``prefix_cache_size`` prompts are kept for reuse; usage still counts every prompt token, as an
    API would bill them.
    """

    def __init__(self, model: PreTrainedModel, tokenizer, *, device: str | torch.device | None = None,
                 dtype: str | torch.dtype | None = None, chat: bool = False, prefix_cache_size: int = 4) -> None:
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = model.to(device=self.device, dtype=self.dtype).eval()
        self.tokenizer = tokenizer
        self.chat = chat
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
        self._prefix_lock = threading.Lock()

    @classmethod
    def from_pretrained(cls, path_or_id: str | Path, *, gguf_file: str | None = None,
                        device: str | torch.device | None = None, dtype: str | torch.dtype | None = None,
                        chat: bool = False, trust_remote_code: bool = False) -> TransformersGenerator:
        """Load a causal LM from a local folder or a hub id (``gguf_file`` for a GGUF file inside it).

        Weights load from safetensors or GGUF only, never from pickle files; a hub id loads offline from
        the local cache, and fails at once when it is not there and the hub is unreachable.
        """
        name = str(path_or_id)
        source, local_only = model_source(name, "causal LM", gguf_file=gguf_file)
        kwargs: dict[str, Any] = {"trust_remote_code": trust_remote_code, "local_files_only": local_only}
        gguf = {"gguf_file": gguf_file} if gguf_file is not None else {}
        try:
            tokenizer = AutoTokenizer.from_pretrained(source, **kwargs, **gguf)
            model = AutoModelForCausalLM.from_pretrained(source, **kwargs, **(gguf or {"use_safetensors": True}))
        except (OSError, ValueError) as exc:
            raise CheckpointError(name, f"cannot load as a causal LM: {describe_load_error(exc)}") from exc
        return cls(model, tokenizer, device=device, dtype=dtype, chat=chat)

    # -- prompts -------------------------------------------------------------------------------

    def _encode_prompt(self, prompt: str, reserve: int) -> list[int]:
        if not isinstance(prompt, str) or not prompt:
            raise InputError("prompt", "must be a non-empty string")
        if self.chat:
            text = self.tokenizer.apply_chat_template([{"role": "user", "content": prompt}], tokenize=False,
                                                      add_generation_prompt=True)
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        else:
            ids = self.tokenizer(prompt)["input_ids"]
        if self._max_positions and len(ids) + reserve > self._max_positions:
            raise PromptTooLong("prompt", f"{len(ids)} tokens plus {reserve} to come exceed the model's "
                                          f"{self._max_positions} positions")
        return ids

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

    def _prefill(self, ids: list[int]) -> tuple[torch.Tensor, Any]:
        """The prompt's last logits and a KV cache of the whole prompt (the caller may modify it).

        Only the tail after the longest cached prefix runs through the model.
        """
        start, cache = 0, None
        with self._prefix_lock:
            if self._prefix_kv:
                key = max(self._prefix_kv, key=lambda k: common_prefix_length(k, ids))
                start = min(common_prefix_length(key, ids), len(ids) - 1)  # run at least the last token
                if start > 0:
                    cache = fork_cache(self._prefix_kv[key])
                    if len(key) > start:
                        cache.crop(start - len(key))  # a negative count removes that many tokens from the end
                    self._prefix_kv.move_to_end(key)
        kwargs = {self._cache_kw: cache} if cache is not None else {}
        out = self.model(input_ids=torch.tensor([ids[start:]], device=self.device), use_cache=True,
                         **self._last_logits_only, **kwargs)
        full = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
        if self.prefix_cache_size > 0:
            stored = fork_cache(full)
            with self._prefix_lock:
                self._prefix_kv[tuple(ids)] = stored
                while len(self._prefix_kv) > self.prefix_cache_size:
                    self._prefix_kv.popitem(last=False)
        return out.logits[0, -1], full

    # -- propose -------------------------------------------------------------------------------

    @torch.inference_mode()
    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Sample ``k`` continuations; each ends at EOS or just before the first ``stop`` string.

        Pure temperature sampling (no top-k or top-p truncation); ``temperature=0`` decodes greedily
        once and returns that candidate ``k`` times.
        """
        check_sampling(k, temperature, max_new_tokens)
        stops = [s for s in (stop or []) if s]
        prompt_ids = self._encode_prompt(prompt, reserve=max_new_tokens)
        sampling = temperature > 0
        rows = self._decode(prompt_ids, k if sampling else 1, temperature, max_new_tokens, stops, seed)
        candidates, kept = [], []
        for tokens, logps in rows:
            end, text = cut_at_stop(tokens, self._text, stops, self._eos_ids)
            candidates.append(Candidate(text=text, logprob=float(sum(logps[:end])), num_tokens=end))
            kept.append(tokens[:end])
        usage = Usage(calls=1, prompt_tokens=len(prompt_ids), generated_tokens=sum(c.num_tokens for c in candidates))
        if not sampling:
            candidates, kept = candidates * k, kept * k
        return Generation(candidates, usage, token_ids=kept)

    def _decode(self, prompt_ids: list[int], rows: int, temperature: float, max_new_tokens: int,
                stops: list[str], seed: int | None) -> list[tuple[list[int], list[float]]]:
        """``rows`` continuations sampled together on one shared prompt cache: (token ids, raw log-probs)."""
        last_logits, cache = self._prefill(prompt_ids)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        logits = last_logits.float().expand(rows, -1)
        rng = torch.Generator(device=self.device)
        if seed is None:
            rng.seed()
        else:
            rng.manual_seed(seed)
        tokens: list[list[int]] = [[] for _ in range(rows)]
        logps: list[list[float]] = [[] for _ in range(rows)]
        done = [False] * rows
        for _ in range(max_new_tokens):
            raw = torch.log_softmax(logits, dim=-1)
            if temperature > 0:
                probs = torch.softmax(logits / temperature, dim=-1)
                nxt = torch.multinomial(probs, num_samples=1, generator=rng).squeeze(1)
            else:
                nxt = logits.argmax(dim=-1)
            picked = raw.gather(-1, nxt[:, None]).squeeze(1).tolist()
            for row, (token, logp) in enumerate(zip(nxt.tolist(), picked)):
                if done[row]:
                    continue
                tokens[row].append(token)
                logps[row].append(logp)
                done[row] = token in self._eos_ids or stop_seen(tokens[row], self._text, stops)
            if all(done):
                break
            out = self.model(input_ids=nxt[:, None], use_cache=True, **{self._cache_kw: cache})
            cache = out.cache if getattr(out, "cache", None) is not None else out.past_key_values
            logits = out.logits[:, -1].float()
        return list(zip(tokens, logps))

    def _text(self, tokens: Sequence[int]) -> str:
        return self.tokenizer.decode(list(tokens), skip_special_tokens=True)

    # -- score_choices --------------------------------------------------------------------------

    @torch.inference_mode()
    def score_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        """Log-prob of each continuation from one prompt forward whose KV cache all choices share."""
        choice_ids = self._encode_choices(choices)
        longest = max(len(ids) for ids in choice_ids)
        prompt_ids = self._encode_prompt(prompt, reserve=longest)
        n_prompt = len(prompt_ids)

        last_logits, cache = self._prefill(prompt_ids)
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
        usage = Usage(calls=1, prompt_tokens=n_prompt + sum(len(ids) for ids in choice_ids))
        return Generation(candidates, usage, token_ids=choice_ids)


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


def fork_cache(cache: Any) -> Any:
    """A copy of a KV cache that the caller may extend, crop or repeat without changing ``cache``.

    transformers' ``DynamicLayer`` never writes into its tensors (it concatenates, slices and repeats into
    new ones), so a fork of a ``DynamicCache`` shares them and copies only the small layer objects: reusing a
    1,000-token prefix costs no 50 MB copy. Any other cache is deep-copied.
    """
    from transformers.cache_utils import DynamicCache, DynamicLayer

    if type(cache) is not DynamicCache or any(type(layer) is not DynamicLayer for layer in cache.layers):
        return copy.deepcopy(cache)
    fork = copy.copy(cache)
    fork.layers = [copy.copy(layer) for layer in cache.layers]
    return fork


def common_prefix_length(a: Sequence[int], b: Sequence[int]) -> int:
    """How many leading items two token sequences share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n
