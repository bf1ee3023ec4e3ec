"""A GGUF model run in-process by llama.cpp (llama-cpp-python) as a generator.

It reads logits straight from llama.cpp's context, so nothing goes through the completions code
whose echoed log-probs are off by one (see ``openai_compat``): proposals carry the raw-logit
log-probs of their tokens, and ``score_choices`` runs each choice on the prompt's KV cache, all
choices in one batch of sequences. The KV cache of the last prompt is reused by the next call
when the prompts share a prefix. One context holds one state, so calls are serialised by a lock.
Needs llama-cpp-python (``make install-llama-cpp``).
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from srm_agent.errors import CheckpointError, InputError
from srm_agent.generators.base import Generation, Usage, check_sampling, cut_at_stop, stop_seen
from srm_agent.rule import Candidate


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class LlamaCppGenerator:
    """A GGUF causal LM in-process through llama.cpp (``srm_agent.generators.Generator``).

    Prompts are raw text to continue (the BOS token is added only where the GGUF asks for one, as
    the transformers tokenizer does). ``max_choices`` is how many choices one ``score_choices`` call
    scores side by side (more are scored in several batches).
    """

    def __init__(self, model_path: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                 max_choices: int = 16) -> None:
        path = Path(model_path).expanduser()
        if not path.is_file():
            raise CheckpointError(str(path), "no such GGUF file")
        try:
            import llama_cpp
        except ImportError as exc:
            raise CheckpointError(str(path), f"llama-cpp-python is not installed ({exc}); run "
                                             "`make install-llama-cpp`") from exc
        from llama_cpp import _internals

        self._lib = llama_cpp
        self.llm = llama_cpp.Llama(model_path=str(path), n_ctx=n_ctx, n_threads=n_threads, logits_all=False,
                                   verbose=False)
        # Choices run as parallel sequences on the prompt's cache, so the context needs that many
        # sequences sharing one KV buffer; Llama's own context has one sequence: replace it.
        params = self.llm.context_params
        params.n_seq_max = max_choices + 1
        params.kv_unified = True
        single = self.llm._ctx
        self.llm._ctx = self.llm._stack.enter_context(
            contextlib.closing(_internals.LlamaContext(model=self.llm._model, params=params, verbose=False)))
        single.close()
        self.max_choices = max_choices
        self.model_path = path
        self._vocab = self.llm._model.vocab
        self._n_vocab = self.llm.n_vocab()
        self._add_bos = bool(self.llm._model.add_bos_token())
        self._lock = threading.Lock()

    # -- tokens ---------------------------------------------------------------------------------

    def _tokens(self, text: str, *, bos: bool) -> list[int]:
        return self.llm.tokenize(text.encode("utf-8"), add_bos=bos and self._add_bos, special=True)

    def _text(self, tokens: Sequence[int]) -> str:
        return self.llm.detokenize(list(tokens)).decode("utf-8", errors="replace")

    def _is_eog(self, token: int) -> bool:
        return bool(self._lib.llama_vocab_is_eog(self._vocab, token))

    def _encode_prompt(self, prompt: str, reserve: int) -> list[int]:
        if not isinstance(prompt, str) or not prompt:
            raise InputError("prompt", "must be a non-empty string")
        ids = self._tokens(prompt, bos=True)
        if len(ids) + reserve > self.llm.n_ctx():
            raise InputError("prompt", f"{len(ids)} tokens plus {reserve} to come exceed the context of "
                                       f"{self.llm.n_ctx()} tokens")
        return ids

    # -- llama.cpp state ------------------------------------------------------------------------

    def _last_logits(self) -> np.ndarray:
        ptr = self.llm._ctx.get_logits_ith(-1)
        return np.ctypeslib.as_array(ptr, shape=(self._n_vocab,)).astype(np.float64)

    def _prefill(self, ids: list[int]) -> np.ndarray:
        """Run ``ids`` on sequence 0, reusing the cached prefix; the logits after the last token."""
        llm = self.llm
        cached = llm.input_ids[: llm.n_tokens].tolist()
        shared = 0
        for a, b in zip(cached, ids):
            if a != b:
                break
            shared += 1
        llm.n_tokens = min(shared, len(ids) - 1)  # run at least the last token, for its logits
        llm.eval(ids[llm.n_tokens:])
        return self._last_logits()

    def _step(self, token: int) -> np.ndarray:
        self.llm.eval([token])
        return self._last_logits()

    # -- propose --------------------------------------------------------------------------------

    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Sample ``k`` continuations one after another on the prompt's cache (pure temperature sampling)."""
        check_sampling(k, temperature, max_new_tokens)
        stops = [s for s in (stop or []) if s]
        rows = k if temperature > 0 else 1
        rng = np.random.default_rng(seed)
        with self._lock:
            prompt_ids = self._encode_prompt(prompt, reserve=max_new_tokens)
            first = self._prefill(prompt_ids)
            n_prompt = self.llm.n_tokens
            samples = []
            for _ in range(rows):
                self.llm.n_tokens = n_prompt
                logits, tokens, logps = first, [], []
                for _ in range(max_new_tokens):
                    raw = _log_softmax(logits)
                    if temperature > 0:
                        probs = np.exp(_log_softmax(logits / temperature))
                        token = int(rng.choice(len(probs), p=probs / probs.sum()))
                    else:
                        token = int(logits.argmax())
                    tokens.append(token)
                    logps.append(float(raw[token]))
                    if self._is_eog(token) or stop_seen(tokens, self._text, stops) or len(tokens) == max_new_tokens:
                        break
                    logits = self._step(token)
                samples.append((tokens, logps))
        eos = {t for tokens, _ in samples for t in tokens if self._is_eog(t)}
        candidates, kept = [], []
        for tokens, logps in samples:
            end, text = cut_at_stop(tokens, self._text, stops, eos)
            candidates.append(Candidate(text=text, logprob=float(sum(logps[:end])), num_tokens=end))
            kept.append(tokens[:end])
        usage = Usage(calls=1, prompt_tokens=len(prompt_ids), generated_tokens=sum(c.num_tokens for c in candidates))
        if rows == 1:
            candidates, kept = candidates * k, kept * k
        return Generation(candidates, usage, token_ids=kept)

    # -- score_choices ----------------------------------------------------------------------------

    def score_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        """Log-prob of each continuation: the prompt runs once, then the choices side by side on its cache."""
        if isinstance(choices, str) or len(choices) == 0:
            raise InputError("choices", "must hold at least one choice")
        choice_ids = []
        for i, choice in enumerate(choices):
            ids = self._tokens(choice, bos=False) if isinstance(choice, str) and choice else []
            if not ids:
                raise InputError(f"choices[{i}]", "must be a non-empty string")
            choice_ids.append(ids)
        totals: list[float] = []
        with self._lock:
            prompt_ids = self._encode_prompt(prompt, reserve=max(map(len, choice_ids)))
            first = _log_softmax(self._prefill(prompt_ids))
            for start in range(0, len(choice_ids), self.max_choices):
                totals += self._score_batch(first, len(prompt_ids), choice_ids[start: start + self.max_choices])
        candidates = [Candidate(text=c, logprob=t, num_tokens=len(ids))
                      for c, t, ids in zip(choices, totals, choice_ids)]
        usage = Usage(calls=1, prompt_tokens=len(prompt_ids) + sum(map(len, choice_ids)))
        return Generation(candidates, usage, token_ids=choice_ids)

    def _score_batch(self, first: np.ndarray, n_prompt: int, choice_ids: list[list[int]]) -> list[float]:
        """Copy the prompt's KV to sequences 1..n, run every choice but its last token in one batch."""
        lib, ctx = self._lib, self.llm._ctx.ctx
        memory = lib.llama_get_memory(ctx)
        rest = [ids[:-1] for ids in choice_ids]
        n_tokens = sum(map(len, rest))
        totals = [float(first[ids[0]]) for ids in choice_ids]
        if n_tokens == 0:
            return totals
        for seq in range(1, len(choice_ids) + 1):
            lib.llama_memory_seq_rm(memory, seq, -1, -1)
            lib.llama_memory_seq_cp(memory, 0, seq, 0, n_prompt)
        batch = lib.llama_batch_init(n_tokens, 0, 1)
        try:
            rows = []
            for seq, ids in enumerate(rest, start=1):
                for pos, token in enumerate(ids):
                    j = len(rows)
                    batch.token[j] = token
                    batch.pos[j] = n_prompt + pos
                    batch.n_seq_id[j] = 1
                    batch.seq_id[j][0] = seq
                    batch.logits[j] = True
                    rows.append((seq - 1, pos))
            batch.n_tokens = n_tokens
            if lib.llama_decode(ctx, batch) != 0:
                raise RuntimeError("llama_decode failed while scoring choices")
            logits = np.ctypeslib.as_array(ctypes.cast(lib.llama_get_logits(ctx), ctypes.POINTER(ctypes.c_float)),
                                           shape=(n_tokens, self._n_vocab)).astype(np.float64)
        finally:
            lib.llama_batch_free(batch)
            for seq in range(1, len(choice_ids) + 1):
                lib.llama_memory_seq_rm(memory, seq, -1, -1)
        logp = _log_softmax(logits)
        for row, (i, pos) in enumerate(rows):
            totals[i] += float(logp[row, choice_ids[i][pos + 1]])
        return totals


@contextlib.contextmanager
def llama_cpp_server(gguf: str | Path, *, n_ctx: int = 4096, n_threads: int | None = None,
                     log_path: str | Path | None = None, startup_s: float = 120.0) -> Iterator[tuple[str, Any]]:
    """Serve ``gguf`` with ``python -m llama_cpp.server`` on a free loopback port for the duration of the
    block; yields (base URL ending in /v1, the server's Popen). Its output goes to ``log_path``."""
    import os
    import signal
    import socket
    import subprocess
    import sys
    import time
    import urllib.request

    from srm_agent.errors import ServerError

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    command = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host", "127.0.0.1",
               "--port", str(port), "--n_ctx", str(n_ctx)] + (["--n_threads", str(n_threads)] if n_threads else [])
    log = open(log_path, "wb") if log_path else subprocess.DEVNULL  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)

    def tail() -> str:
        return Path(log_path).read_text(errors="replace")[-1500:] if log_path else "(no log kept)"

    try:
        deadline = time.monotonic() + startup_s
        while True:
            if proc.poll() is not None:
                raise ServerError(url, f"llama_cpp.server exited with status {proc.returncode}: {tail()}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise ServerError(url, f"llama_cpp.server did not answer within {startup_s:.0f} s: {tail()}")
                time.sleep(0.5)
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
        if log_path:
            log.close()
