"""A small OpenAI-compatible completions server over an in-process causal LM, with switchable faults.

It answers ``/v1/models`` and ``/v1/completions`` (echo, logprobs, n, seed, stop, a GBNF literal
``grammar``) the way vLLM does by default, and can be told to misbehave the ways real engines do:
``off_by_one`` echo log-probs (llama-cpp-python on a model without BOS), ``tempered`` sampled
log-probs, ``ignore_n``, ``reject_lists``, ``no_echo``; ``grammar`` adds llama-cpp-python's
``/extras/tokenize`` and token-id grammars (``root ::= <[12]> <[7]>``). Bound to loopback only.
"""

from __future__ import annotations

import json
import re
import threading
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Iterator

import torch


class FakeCompletionsServer:
    def __init__(self, model, tokenizer, *, off_by_one: bool = False, tempered: bool = False,
                 ignore_n: bool = False, reject_lists: bool = False, no_echo: bool = False,
                 grammar: bool = False, name: str = "tiny") -> None:
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.off_by_one, self.tempered, self.ignore_n = off_by_one, tempered, ignore_n
        self.reject_lists, self.no_echo, self.grammar = reject_lists, no_echo, grammar
        self.requests: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        # A random tiny model writes stray bytes; sampling keeps to tokens that are whole printable text
        # (their reported log-probs stay those of the full distribution).
        pieces = [tokenizer.decode([t]) for t in range(len(tokenizer))]
        self._unclean = torch.tensor([not p or "\ufffd" in p or not (p.isprintable() or p == "\n")
                                      or t == tokenizer.pad_token_id
                                      for t, p in enumerate(pieces)])

    # -- the model ----------------------------------------------------------------------------

    def _logp(self, ids: list[int]) -> torch.Tensor:
        with torch.no_grad():
            return torch.log_softmax(self.model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)

    def _piece(self, token: int) -> str:
        return self.tokenizer.decode([token])

    def _echo(self, prompt: str) -> dict[str, Any]:
        ids = self.tokenizer(prompt)["input_ids"]
        logp = self._logp(ids)
        nxt = int(logp[-1].argmax())
        values: list[float | None] = [None]
        for i in range(1, len(ids)):
            row = i if self.off_by_one else i - 1
            values.append(float(logp[row, ids[i]]))
        tokens = [self._piece(t) for t in ids] + [self._piece(nxt)]
        values.append(float(logp[-1, nxt]))
        offsets, pos = [], 0
        for piece in tokens:
            offsets.append(pos)
            pos += len(piece)
        return {"text": "".join(tokens), "tokens": tokens, "values": values, "offsets": offsets,
                "prompt_tokens": len(ids), "completion_tokens": 1}

    def _sample(self, prompt: str, body: dict[str, Any], rng: torch.Generator,
                forced: list[int] | None) -> dict[str, Any]:
        ids = self.tokenizer(prompt)["input_ids"]
        temperature = float(body.get("temperature", 1.0))
        stops = body.get("stop") or []
        stops = [stops] if isinstance(stops, str) else stops
        eos = self.tokenizer.eos_token_id
        tokens: list[int] = []
        values: list[float] = []
        text = ""
        for _ in range(int(body.get("max_tokens", 16))):
            logits = self.model(input_ids=torch.tensor([ids + tokens])).logits[0, -1].float().detach()
            raw = torch.log_softmax(logits, dim=-1)
            logits = logits.masked_fill(self._unclean, float("-inf"))
            if forced is not None:
                if len(tokens) == len(forced):
                    break
                token = forced[len(tokens)]
            elif temperature == 0:
                token = int(logits.argmax())
            else:
                token = int(torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=rng))
            reported = torch.log_softmax(raw / temperature, -1)[token] if self.tempered and temperature > 0 \
                else raw[token]
            if token == eos:
                break
            tokens.append(token)
            values.append(float(reported))
            text = self.tokenizer.decode(tokens)
            hit = [text.index(s) for s in stops if s in text]
            if hit:
                text = text[: min(hit)]
                break
        pieces = [self._piece(t) for t in tokens]
        return {"text": text, "tokens": pieces, "values": values,
                "offsets": [len(prompt) + sum(len(p) for p in pieces[:i]) for i in range(len(pieces))],
                "prompt_tokens": len(ids), "completion_tokens": len(tokens)}

    def complete(self, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        with self._lock:
            self.requests.append(body)
        prompts = body.get("prompt")
        if isinstance(prompts, list):
            if self.reject_lists and len(prompts) > 1:
                return 500, {"error": {"message": "only one prompt per request"}}
        else:
            prompts = [prompts]
        if body.get("echo") and self.no_echo:
            return 400, {"error": {"message": "echo is not supported"}}
        grammar = (body.get("grammar") if self.grammar else None)
        forced = None
        if grammar:
            forced = [int(t) for t in re.findall(r"<\[(\d+)\]>", grammar)]
        n = 1 if self.ignore_n else int(body.get("n") or 1)
        seed = body.get("seed")
        rng = torch.Generator().manual_seed(seed if seed is not None else 12345)
        choices, usage = [], {"prompt_tokens": 0, "completion_tokens": 0}
        with self._lock, torch.no_grad():
            for prompt in prompts:
                for _ in range(n):
                    out = self._echo(prompt) if body.get("echo") else self._sample(prompt, body, rng, forced)
                    usage["prompt_tokens"] += out["prompt_tokens"]
                    usage["completion_tokens"] += out["completion_tokens"]
                    logprobs = None
                    if body.get("logprobs") is not None:
                        logprobs = {"tokens": out["tokens"], "token_logprobs": out["values"],
                                    "text_offset": out["offsets"], "top_logprobs": None}
                    choices.append({"index": len(choices), "text": out["text"], "logprobs": logprobs,
                                    "finish_reason": "stop"})
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        return 200, {"id": "cmpl-fake", "object": "text_completion", "created": 0, "model": self.name,
                     "choices": choices, "usage": usage}

    # -- HTTP ---------------------------------------------------------------------------------

    @contextmanager
    def serve(self) -> Iterator[str]:
        """Serve on a free loopback port for the duration of the block; yields the base URL (…/v1)."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path.rstrip("/") == "/v1/models":
                    self._send(200, {"object": "list", "data": [{"id": fake.name, "object": "model", "created": 0,
                                                                 "owned_by": "test"}]})
                else:
                    self._send(404, {"error": {"message": "not found"}})

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path == "/extras/tokenize" and fake.grammar:
                    self._send(200, {"tokens": fake.tokenizer(body["input"], add_special_tokens=False)["input_ids"]})
                    return
                if self.path.rstrip("/") != "/v1/completions":
                    self._send(404, {"error": {"message": "not found"}})
                    return
                self._send(*fake.complete(body))

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield f"http://127.0.0.1:{server.server_address[1]}/v1"
        finally:
            server.shutdown()
            server.server_close()
