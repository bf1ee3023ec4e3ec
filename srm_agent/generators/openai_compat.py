"""Any OpenAI-compatible completions server as a generator: vLLM, llama-cpp-python's server, TGI …

The decision rule needs two things a chat endpoint cannot give: the untempered log-prob of each
sampled continuation, and the log-prob of given continuations (``score_choices``). Both come from
the completions API with ``logprobs``; what each engine really returns differs, so the generator
asks the server once, at construction, with a short probe prompt:

- **Choice scoring.** ``echo`` + ``logprobs`` returns the prompt's token log-probs; a choice's
  tokens are found by their text offsets. Those log-probs are checked against the server's own
  greedy-sampling log-probs of the same tokens. llama-cpp-python 0.3.x pairs each echoed token
  with the logits *after* it when the model adds no BOS token (SmolLM2, Qwen …), so its echo is
  off by one position; that is detected here, and where the server tokenises text and takes a
  GBNF grammar of token ids (llama.cpp's), each choice is scored instead by greedy decoding held
  to the choice's own tokens (``scoring="forced"``): the sampled-token log-probs it returns are
  right, and the choice is tokenised alone, as the in-process generator does. A server that
  offers neither raises ``ServerError`` naming its URL and the missing capability.
- **Sampled log-probs.** vLLM (V1, default ``--logprobs-mode raw_logprobs``) and llama-cpp-python
  return the raw-logit log-probs of sampled tokens; a server that returns tempered ones is
  detected (a sample at temperature 2 rescored) and its samples are rescored with
  ``score_choices``.
- **Batching.** ``n=k`` samples and a list of prompts per request where the server takes them
  (vLLM does); otherwise one request per sample or choice, which share the server's prefix cache.

Usage is the server's own count (``usage`` of each response; every request is a call). The
client retries 408/409/429/5xx and connection errors with exponential backoff (``max_retries``)
and gives up after ``timeout`` seconds per request, so a dead server ends a search with an
error, not a hang. One generator may be used from many threads (the ``openai`` client is
thread-safe) and from asyncio (``apropose``/``ascore_choices``, one async client per event loop).
"""

from __future__ import annotations

import asyncio
import logging
import math
import threading
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import openai

from srm_agent.errors import InputError, ServerError
from srm_agent.generators.base import Generation, Usage, check_sampling
from srm_agent.rule import Candidate

log = logging.getLogger(__name__)

PROBE_PROMPT = "Count to twenty: 1, 2, 3, 4, 5, 6, 7,"
PROBE_FORCED = " 9, 10"  # a continuation greedy decoding would not write: shows a grammar is obeyed
AGREE_RELATIVE = 0.05  # two readings agree within tolerance + this share of the mean |log-prob| per token
PROBE_TOKENS = 6
TOKEN_CACHE_SIZE = 65536
PROBE_HOT_TEMPERATURE = 2.0  # tempered and raw log-probs differ by whole nats at this temperature
# Pure temperature sampling, as the in-process generator does: no top-k/top-p/min-p truncation, no
# repetition penalty (llama-cpp-python defaults to top_k 40, top_p 0.95, min_p 0.05, repeat_penalty 1.1).
PURE_SAMPLING: dict[str, Any] = {"top_k": 0, "min_p": 0.0, "repeat_penalty": 1.0, "repetition_penalty": 1.0}

Scoring = Literal["echo", "forced"]


@dataclass(frozen=True)
class ServerCapabilities:
    """What a server does right, found by the construction probe (or given, to skip it).

    ``scoring``: how choices are scored ("echo": prompt log-probs; "forced": greedy decoding held to the
    choice's tokens by a token-id grammar);
    ``prompt_lists``: one request may carry several prompts; ``n_samples``: ``n`` > 1 is honoured;
    ``raw_sampled_logprobs``: sampled tokens come with untempered log-probs (else samples are rescored).
    """

    scoring: Scoring = "echo"
    prompt_lists: bool = True
    n_samples: bool = True
    raw_sampled_logprobs: bool = True


@dataclass(frozen=True)
class _Tokens:
    """Token strings and log-probs of one span of a response."""

    tokens: list[str]
    logprobs: list[float]

    @property
    def total(self) -> float:
        return float(sum(self.logprobs))


class OpenAICompatibleGenerator:
    """A model behind an OpenAI-compatible ``/v1/completions`` endpoint (``srm_agent.generators.Generator``).

    ``model`` None takes the one model the server lists. ``api_key`` None sends "EMPTY" (local
    servers ignore it). ``capabilities`` skips the construction probe; two log-prob readings of the same
    tokens agree when their mean absolute difference per token is within ``tolerance`` nats plus 5 % of
    their mean magnitude (servers compute prompt and sampled tokens with different kernels).
    ``extra_body`` goes with every sampling request (default: ``PURE_SAMPLING``; pass ``{}`` for a
    server that rejects unknown fields).
    """

    def __init__(self, base_url: str, model: str | None = None, api_key: str | None = None, *,
                 timeout: float = 120.0, max_retries: int = 3, capabilities: ServerCapabilities | None = None,
                 tolerance: float = 0.1, extra_body: dict[str, Any] | None = None) -> None:
        if not isinstance(base_url, str) or not base_url.startswith(("http://", "https://")):
            raise InputError("base_url", f"must be an http(s) URL such as http://127.0.0.1:8000/v1, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key or "EMPTY"
        self.timeout = timeout
        self.max_retries = max_retries
        self.tolerance = tolerance
        self.extra_body = dict(PURE_SAMPLING if extra_body is None else extra_body)
        self.client = openai.OpenAI(base_url=self.base_url, api_key=self.api_key, timeout=timeout,
                                    max_retries=max_retries)
        self._async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, openai.AsyncOpenAI] = \
            weakref.WeakKeyDictionary()
        self._async_lock = threading.Lock()
        self._root = self.base_url[: -len("/v1")] if self.base_url.endswith("/v1") else self.base_url
        self._token_cache: dict[str, list[int]] = {}
        self._tokenize_path: str | None = None
        self._special_prefix: list[int] | None = None
        self.model = model or self._only_model()
        self.capabilities = capabilities or self.probe()

    # -- calls ------------------------------------------------------------------------------------

    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Sample ``k`` continuations; each ends at EOS or just before the first ``stop`` string.

        Pure temperature sampling (see ``extra_body``); ``temperature=0`` decodes greedily once and
        returns that candidate ``k`` times. Each log-prob is the sum of the sampled tokens' untempered
        log-probs (the stop string's token included, as the server reports it).
        """
        requests = self._propose_requests(prompt, k, temperature, max_new_tokens, stop, seed)
        generation = self._propose_result(k, temperature, [self._create(r) for r in requests])
        texts = _rescorable(generation)
        if self.capabilities.raw_sampled_logprobs or not texts:
            return generation
        return self._rescored(generation, self.score_choices(prompt, texts))

    def score_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        """The log-prob of each given continuation of ``prompt``, from the server's prompt log-probs."""
        _check_choices(prompt, choices)
        ids = self._choice_tokens(choices) if self.capabilities.scoring == "forced" else None
        requests = self._score_requests(prompt, choices, self.capabilities, ids)
        return self._score_result(prompt, choices, [self._create(r) for r in requests])

    async def apropose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                       stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """``propose`` without blocking the event loop (the requests of one call run concurrently)."""
        requests = self._propose_requests(prompt, k, temperature, max_new_tokens, stop, seed)
        responses = await asyncio.gather(*(self._acreate(r) for r in requests))
        generation = self._propose_result(k, temperature, list(responses))
        texts = _rescorable(generation)
        if self.capabilities.raw_sampled_logprobs or not texts:
            return generation
        return self._rescored(generation, await self.ascore_choices(prompt, texts))

    async def ascore_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        """``score_choices`` without blocking the event loop."""
        _check_choices(prompt, choices)
        ids = await self._achoice_tokens(choices) if self.capabilities.scoring == "forced" else None
        requests = self._score_requests(prompt, choices, self.capabilities, ids)
        responses = await asyncio.gather(*(self._acreate(r) for r in requests))
        return self._score_result(prompt, choices, list(responses))

    # -- requests and their results ---------------------------------------------------------------------

    def _propose_requests(self, prompt: str, k: int, temperature: float, max_new_tokens: int,
                          stop: Sequence[str] | None, seed: int | None) -> list[dict[str, Any]]:
        _check_prompt(prompt)
        check_sampling(k, temperature, max_new_tokens)
        rows = k if temperature > 0 else 1
        base: dict[str, Any] = {"prompt": prompt, "max_tokens": max_new_tokens, "temperature": temperature,
                                "top_p": 1.0, "logprobs": 1, "extra_body": self.extra_body}
        stops = [s for s in (stop or []) if s]
        if stops:
            base["stop"] = stops
        if self.capabilities.n_samples or rows == 1:
            return [{**base, "n": rows, **({"seed": seed} if seed is not None else {})}]
        # One request per sample; distinct seeds so that the samples differ, yet are reproducible.
        return [{**base, **({"seed": _sample_seed(seed, i)} if seed is not None else {})} for i in range(rows)]

    def _propose_result(self, k: int, temperature: float, responses: list[Any]) -> Generation:
        candidates = []
        for response in responses:
            for choice in sorted(response.choices, key=lambda c: c.index):
                span = _generated(choice, self.base_url)
                candidates.append(Candidate(text=choice.text, logprob=span.total, num_tokens=len(span.logprobs)))
        rows = k if temperature > 0 else 1
        if len(candidates) < rows:
            raise ServerError(self.base_url, f"returned {len(candidates)} samples for {rows} requested")
        candidates = candidates[:rows] * (1 if temperature > 0 else k)
        return Generation(candidates, self._usage(responses, generated=sum(c.num_tokens for c in candidates[:rows])))

    def _rescored(self, sampled: Generation, scored: Generation) -> Generation:
        """Samples with their rescored log-probs (an empty sample, which nothing rescores, keeps its own)."""
        by_text = {c.text: c for c in scored}
        candidates = [Candidate(text=c.text, logprob=by_text[c.text].logprob, num_tokens=by_text[c.text].num_tokens)
                      if c.text in by_text else c for c in sampled]
        return Generation(candidates, sampled.usage + scored.usage)

    def _score_requests(self, prompt: str, choices: Sequence[str], caps: ServerCapabilities,
                        token_ids: list[list[int]] | None = None) -> list[dict[str, Any]]:
        if caps.scoring == "forced":
            assert token_ids is not None
            return [self._forced_request(prompt, ids) for ids in token_ids]
        texts = [prompt + choice for choice in choices]
        if caps.prompt_lists:
            return [_echo_request(texts)]
        return [_echo_request(text) for text in texts]

    def _score_spans(self, prompt: str, choices: Sequence[str], responses: list[Any], caps: ServerCapabilities
                     ) -> list[_Tokens]:
        """Each choice's tokens and log-probs, from the responses to ``_score_requests``."""
        spans: list[_Tokens] = []
        for choice in (c for response in responses for c in sorted(response.choices, key=lambda c: c.index)):
            i = len(spans)
            if i >= len(choices):
                break
            if caps.scoring == "echo":
                spans.append(_echoed_span(choice, prompt, choices[i], self.base_url))
            elif choice.text != choices[i]:
                raise ServerError(self.base_url, f"ignored the grammar holding it to choices[{i}]: asked for "
                                                 f"{choices[i]!r:.80}, got {choice.text!r:.80}")
            else:
                spans.append(_generated(choice, self.base_url))
        if len(spans) != len(choices):
            raise ServerError(self.base_url, f"scored {len(spans)} of {len(choices)} choices")
        return spans

    def _score_result(self, prompt: str, choices: Sequence[str], responses: list[Any]) -> Generation:
        spans = self._score_spans(prompt, choices, responses, self.capabilities)
        candidates = [Candidate(text=c, logprob=s.total, num_tokens=len(s.logprobs)) for c, s in zip(choices, spans)]
        generated = 0 if self.capabilities.scoring == "echo" else sum(len(s.logprobs) for s in spans)
        return Generation(candidates, self._usage(responses, generated=generated))

    def _forced_request(self, prompt: str, ids: list[int]) -> dict[str, Any]:
        """Greedy decoding held to the tokens ``ids`` by a grammar: its sampled-token log-probs score them."""
        grammar = "root ::= " + " ".join(f"<[{i}]>" for i in ids)
        return {"prompt": prompt, "max_tokens": len(ids), "temperature": 0.0, "logprobs": 1,
                "extra_body": {**self.extra_body, "grammar": grammar}}

    # -- tokenisation, for forced scoring ------------------------------------------------------------

    def _choice_tokens(self, choices: Sequence[str]) -> list[list[int]]:
        return [self._cached_tokens(c) or self._store_tokens(c, self._tokenize(c)) for c in choices]

    async def _achoice_tokens(self, choices: Sequence[str]) -> list[list[int]]:
        return [self._cached_tokens(c) or self._store_tokens(c, await asyncio.to_thread(self._tokenize, c))
                for c in choices]

    def _cached_tokens(self, text: str) -> list[int] | None:
        return self._token_cache.get(text)

    def _store_tokens(self, text: str, ids: list[int]) -> list[int]:
        if len(self._token_cache) >= TOKEN_CACHE_SIZE:
            self._token_cache.clear()  # a search keeps asking about the same actions: start over, rarely
        self._token_cache[text] = ids
        return ids

    def _tokenize(self, text: str) -> list[int]:
        """``text``'s token ids by the server's own tokeniser, without any BOS it puts in front."""
        if self._tokenize_path is None and not self._find_tokenizer(self.client):  # capabilities were given
            raise ServerError(self.base_url, "has no tokenize endpoint (tried /extras/tokenize and /tokenize)")
        if self._special_prefix is None:
            self._special_prefix = self._tokenize_raw("")
        ids = self._tokenize_raw(text)
        n = len(self._special_prefix)
        return ids[n:] if ids[:n] == self._special_prefix else ids

    def _tokenize_raw(self, text: str) -> list[int]:
        body = {"input": text} if self._tokenize_path == "/extras/tokenize" else {"content": text}
        try:
            out = self.client.post(self._root + self._tokenize_path, cast_to=object, body=body)
        except openai.APIError as exc:
            raise _server_error(self.base_url, exc) from exc
        tokens = out.get("tokens") if isinstance(out, dict) else None
        if not isinstance(tokens, list) or not all(isinstance(t, int) for t in tokens):
            raise ServerError(self.base_url, f"{self._tokenize_path} answered {str(out)[:200]}, not token ids")
        return tokens

    def _find_tokenizer(self, once: openai.OpenAI) -> bool:
        """Whether the server tokenises text: llama-cpp-python (/extras/tokenize) or llama.cpp (/tokenize)."""
        for path, body in (("/extras/tokenize", {"input": "a"}), ("/tokenize", {"content": "a"})):
            try:
                out = once.post(self._root + path, cast_to=object, body=body)
            except openai.APIError:
                continue
            if isinstance(out, dict) and isinstance(out.get("tokens"), list):
                self._tokenize_path = path
                return True
        return False

    def _usage(self, responses: list[Any], *, generated: int) -> Usage:
        """The servers' own token counts; where a response has none, what was sent and kept."""
        prompt_tokens = completion_tokens = 0
        counted = True
        for response in responses:
            usage = getattr(response, "usage", None)
            if usage is None:
                counted = False
                continue
            prompt_tokens += usage.prompt_tokens or 0
            completion_tokens += usage.completion_tokens or 0
        return Usage(calls=len(responses), prompt_tokens=prompt_tokens,
                     generated_tokens=completion_tokens if counted else generated)

    # -- transport ---------------------------------------------------------------------------------

    def _create(self, request: dict[str, Any], client: openai.OpenAI | None = None) -> Any:
        try:
            return (client or self.client).completions.create(model=self.model, **request)
        except openai.APIError as exc:
            raise _server_error(self.base_url, exc) from exc

    async def _acreate(self, request: dict[str, Any]) -> Any:
        try:
            return await self._async_client().completions.create(model=self.model, **request)
        except openai.APIError as exc:
            raise _server_error(self.base_url, exc) from exc

    def _async_client(self) -> openai.AsyncOpenAI:
        """One async client per event loop: its connection pool belongs to the loop that made it."""
        loop = asyncio.get_running_loop()
        with self._async_lock:
            client = self._async_clients.get(loop)
            if client is None:
                client = openai.AsyncOpenAI(base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                                            max_retries=self.max_retries)
                self._async_clients[loop] = client
            return client

    def _only_model(self) -> str:
        try:
            models = [m.id for m in self.client.models.list()]
        except openai.APIError as exc:
            raise _server_error(self.base_url, exc) from exc
        if len(models) != 1:
            raise ServerError(self.base_url, f"serves {len(models)} models ({', '.join(models) or 'none'}); "
                                             "name one (openai:MODEL@URL)")
        return models[0]

    # -- the construction probe ------------------------------------------------------------------------

    def probe(self) -> ServerCapabilities:
        """Find out, with a few short requests, how this server scores choices and samples (module doc)."""
        once = self.client.with_options(max_retries=0)  # a refusal is an answer here, not a fault to retry
        greedy = self._create({"prompt": PROBE_PROMPT, "max_tokens": PROBE_TOKENS, "temperature": 0.0,
                               "logprobs": 1, "extra_body": self.extra_body})
        reference = _generated(greedy.choices[0], self.base_url)
        text = greedy.choices[0].text
        if not text or not reference.logprobs:
            raise ServerError(self.base_url, "wrote nothing for the probe prompt; cannot check its log-probs")

        scoring, prompt_lists, finding = self._probe_echo(once, text, reference)
        if scoring is None:
            if not self._probe_forced(once, text, reference):
                raise ServerError(self.base_url, f"cannot score given continuations: {finding}; nor does it "
                                                 "tokenise text and take a token-id grammar (llama.cpp's) to force "
                                                 "them. The search needs prompt log-probs (vLLM: echo + logprobs)")
            log.warning("%s: %s; scoring choices by greedy decoding held to their tokens instead",
                        self.base_url, finding)
            scoring = "forced"
        caps = ServerCapabilities(scoring=scoring, prompt_lists=prompt_lists)
        n_samples, raw = self._probe_sampling(caps)
        if not raw:
            log.warning("%s returns tempered log-probs for sampled tokens; each proposal is rescored with "
                        "score_choices (one more request per call)", self.base_url)
        return ServerCapabilities(scoring=scoring, prompt_lists=prompt_lists, n_samples=n_samples,
                                  raw_sampled_logprobs=raw)

    def _probe_echo(self, once: openai.OpenAI, text: str, reference: _Tokens
                    ) -> tuple[Scoring | None, bool, str]:
        """Echo a prompt list, then a single prompt; the echoed log-probs of ``text`` must match sampling."""
        full = PROBE_PROMPT + text
        finding = ""
        for lists in (True, False):
            try:
                response = self._create(_echo_request([full, full] if lists else full), client=once)
                echoed = [_echoed_span(c, PROBE_PROMPT, text, self.base_url) for c in response.choices]
            except ServerError as exc:
                finding = f"echo + logprobs failed ({exc.message})"
                continue
            if lists and len(echoed) < 2:
                finding = "it answered one of two prompts"
                continue
            if not _agree(echoed[0], reference, self.tolerance):
                return None, False, (f"its prompt log-probs disagree with its own sampling log-probs of the same "
                                     f"tokens ({_show(echoed[0])} vs {_show(reference)}): they are wrong")
            return "echo", lists, ""
        return None, False, finding

    def _probe_forced(self, once: openai.OpenAI, text: str, reference: _Tokens) -> bool:
        """Greedy decoding held to the tokens of ``text`` + a continuation greedy would not write:
        the grammar is obeyed and gives the same log-probs as free greedy decoding."""
        if not self._find_tokenizer(once):
            return False
        forced_text = text + PROBE_FORCED
        try:
            ids = self._tokenize(forced_text)
            response = self._create(self._forced_request(PROBE_PROMPT, ids), client=once)
        except ServerError:
            return False
        choice = response.choices[0]
        if choice.text != forced_text:
            return False
        return _agree(_generated(choice, self.base_url), reference, self.tolerance)

    def _probe_sampling(self, caps: ServerCapabilities) -> tuple[bool, bool]:
        """Whether ``n`` is honoured, and whether sampled log-probs are untempered: samples at temperature 2,
        rescored by ``caps.scoring``, must keep their log-probs (tempered ones are about halved)."""
        n_samples, verdicts = False, []
        for seed in range(3):  # until one sample is tokenised as the scorer would tokenise it
            response = self._create({"prompt": PROBE_PROMPT, "n": 2, "max_tokens": PROBE_TOKENS, "seed": seed,
                                     "temperature": PROBE_HOT_TEMPERATURE, "top_p": 1.0, "logprobs": 1,
                                     "extra_body": self.extra_body})
            n_samples = n_samples or len(response.choices) >= 2
            for choice in response.choices:
                sampled = _generated(choice, self.base_url)
                if not choice.text:
                    continue
                ids = self._choice_tokens([choice.text]) if caps.scoring == "forced" else None
                requests = self._score_requests(PROBE_PROMPT, [choice.text], caps, ids)
                rescored = self._score_spans(PROBE_PROMPT, [choice.text], [self._create(r) for r in requests],
                                             caps)[0]
                if _common_tokens(sampled, rescored):
                    verdicts.append(_agree(sampled, rescored, self.tolerance))
            if verdicts:
                break
        if not verdicts:
            log.warning("%s: no probe sample could be rescored token by token; assuming tempered sampled "
                        "log-probs (proposals are rescored)", self.base_url)
        return n_samples, bool(verdicts) and all(verdicts)


# -- helpers -------------------------------------------------------------------------------------------


def _check_prompt(prompt: str) -> None:
    if not isinstance(prompt, str) or not prompt:
        raise InputError("prompt", "must be a non-empty string")


def _rescorable(generation: Generation) -> list[str]:
    """The distinct non-empty texts of a generation, in order."""
    return list(dict.fromkeys(c.text for c in generation if c.text))


def _check_choices(prompt: str, choices: Sequence[str]) -> None:
    _check_prompt(prompt)
    if isinstance(choices, str) or len(choices) == 0:
        raise InputError("choices", "must hold at least one choice")
    for i, choice in enumerate(choices):
        if not isinstance(choice, str) or not choice:
            raise InputError(f"choices[{i}]", "must be a non-empty string")


def _sample_seed(seed: int, i: int) -> int:
    return (seed * 1_000_003 + i) % (2**31 - 1)


def _echo_request(prompt: str | list[str]) -> dict[str, Any]:
    # max_tokens 1, not 0: llama-cpp-python reads 0 as "no limit". The one generated token is not scored.
    return {"prompt": prompt, "echo": True, "max_tokens": 1, "temperature": 0.0, "logprobs": 1}


def _logprobs_of(choice: Any, url: str) -> Any:
    logprobs = getattr(choice, "logprobs", None)
    if logprobs is None or logprobs.token_logprobs is None or logprobs.tokens is None:
        raise ServerError(url, "returned no token log-probs (the completions API's logprobs); "
                               "the search needs them")
    return logprobs


def _generated(choice: Any, url: str) -> _Tokens:
    """The sampled tokens of a non-echo choice and their log-probs."""
    logprobs = _logprobs_of(choice, url)
    pairs = [(t, float(v)) for t, v in zip(logprobs.tokens, logprobs.token_logprobs) if v is not None]
    if any(not math.isfinite(v) for _, v in pairs):
        raise ServerError(url, f"returned non-finite token log-probs {[v for _, v in pairs]}")
    return _Tokens([t for t, _ in pairs], [v for _, v in pairs])


def _echoed_span(choice: Any, prompt: str, continuation: str, url: str) -> _Tokens:
    """The echoed tokens that overlap ``continuation`` (after ``prompt``), by their text offsets.

    A token that straddles the boundary (the server tokenised prompt and continuation together)
    counts with the continuation.
    """
    logprobs = _logprobs_of(choice, url)
    if not choice.text.startswith(prompt + continuation):
        raise ServerError(url, "echo returned other text than the prompt sent; it cannot score continuations")
    offsets = list(logprobs.text_offset or [])
    if len(offsets) != len(logprobs.tokens):
        raise ServerError(url, "echo returned no text offsets for its tokens; it cannot score continuations")
    start, end = len(prompt), len(prompt) + len(continuation)
    tokens, values = [], []
    for i, (token, offset, value) in enumerate(zip(logprobs.tokens, offsets, logprobs.token_logprobs)):
        token_end = offsets[i + 1] if i + 1 < len(offsets) else offset + len(token)
        if token_end > start and offset < end:
            if value is None or not math.isfinite(value):
                raise ServerError(url, f"echo gave no finite log-prob for token {token!r} at offset {offset}")
            tokens.append(token)
            values.append(float(value))
    if not tokens:
        raise ServerError(url, "echo returned no tokens for the continuation")
    return _Tokens(tokens, values)


def _common_tokens(a: _Tokens, b: _Tokens) -> int:
    n = 0
    for x, y in zip(a.tokens, b.tokens):
        if x != y:
            break
        n += 1
    return n


def _agree(a: _Tokens, b: _Tokens, tolerance: float) -> bool:
    """Same leading tokens, whose log-probs differ by at most ``tolerance`` + 5 % of their magnitude per token."""
    n = _common_tokens(a, b)
    if n == 0:
        return False
    gap = sum(abs(x - y) for x, y in zip(a.logprobs[:n], b.logprobs[:n])) / n
    size = sum(abs(x) + abs(y) for x, y in zip(a.logprobs[:n], b.logprobs[:n])) / (2 * n)
    return gap <= tolerance + AGREE_RELATIVE * size


def _show(tokens: _Tokens) -> str:
    return ", ".join(f"{t!r}: {v:.2f}" for t, v in zip(tokens.tokens[:3], tokens.logprobs[:3]))


def _server_error(url: str, exc: openai.APIError) -> ServerError:
    if isinstance(exc, openai.APITimeoutError):
        return ServerError(url, "did not answer in time (timeout); is it overloaded or hung?")
    if isinstance(exc, openai.APIConnectionError):
        return ServerError(url, f"cannot be reached ({exc.__cause__ or exc})")
    status = getattr(exc, "status_code", None)
    body = getattr(exc, "body", None)
    detail = body.get("message") or body.get("detail") or body if isinstance(body, dict) else (body or exc.message)
    return ServerError(url, f"answered {status or 'an error'}: {str(detail)[:300]}")
