"""The generator protocol: propose candidate actions with their log-probabilities, and score given ones.

The log-probability of a candidate is the sum over its tokens under the model's untempered
distribution (raw logits), whatever temperature sampled it: the decision rule compares the
generator's own belief with the SRM's, not the sampler's.

Every call returns its own cost (``Generation.usage``): generators hold no running counters, so
searches that share one generator in several threads or tasks never charge each other's tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from typing import Protocol, runtime_checkable

from srm_agent.errors import InputError
from srm_agent.rule import Candidate


@dataclass(frozen=True)
class Usage:
    """What generator calls cost: calls, prompt tokens read (cached prefixes included), tokens generated."""

    calls: int = 0
    prompt_tokens: int = 0
    generated_tokens: int = 0

    def __add__(self, other: Usage) -> Usage:
        return Usage(self.calls + other.calls, self.prompt_tokens + other.prompt_tokens,
                     self.generated_tokens + other.generated_tokens)

    @property
    def tokens(self) -> int:
        return self.prompt_tokens + self.generated_tokens

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def total(cls, usages: Iterable[Usage]) -> Usage:
        out = cls()
        for usage in usages:
            out = out + usage
        return out


class Generation(list):
    """The candidates of one generator call (a list of ``Candidate``) and what that call cost.

    ``token_ids`` holds each candidate's token ids where the backend knows them (None otherwise).
    """

    def __init__(self, candidates: Iterable[Candidate], usage: Usage,
                 token_ids: Sequence[Sequence[int]] | None = None) -> None:
        super().__init__(candidates)
        self.usage = usage
        self.token_ids = None if token_ids is None else [list(ids) for ids in token_ids]

    def __repr__(self) -> str:
        return f"Generation({list.__repr__(self)}, usage={self.usage!r})"


def check_sampling(k: int, temperature: float, max_new_tokens: int) -> None:
    """InputError naming the first bad ``propose`` argument."""
    if not isinstance(k, int) or k < 1:
        raise InputError("k", f"must be an integer >= 1, got {k!r}")
    if not temperature >= 0:
        raise InputError("temperature", f"must be >= 0, got {temperature}")
    if not isinstance(max_new_tokens, int) or max_new_tokens < 1:
        raise InputError("max_new_tokens", f"must be an integer >= 1, got {max_new_tokens!r}")


def stop_seen(tokens: Sequence[int], decode: Callable[[Sequence[int]], str], stops: Sequence[str]) -> bool:
    """Whether a stop string has appeared in the last few sampled tokens (decoding only the tail)."""
    if not stops:
        return False
    tail = decode(tokens[-(max(map(len, stops)) + 2):])
    return any(s in tail for s in stops)


def cut_at_stop(tokens: Sequence[int], decode: Callable[[Sequence[int]], str], stops: Sequence[str],
                eos_ids: set[int]) -> tuple[int, str]:
    """Where a sampled continuation ends and its text: at the first EOS (counted, not shown) or at the
    token that completes the first stop string (counted; the text stops before the stop string)."""
    end = next((i + 1 for i, t in enumerate(tokens) if t in eos_ids), len(tokens))
    body = tokens[:end - 1] if end and tokens[end - 1] in eos_ids else tokens[:end]
    text = decode(body)
    if stops and any(s in text for s in stops):
        for n in range(1, len(body) + 1):
            partial = decode(body[:n])
            hits = [partial.find(s) for s in stops if s in partial]
            if hits:
                return n, partial[: min(hits)]
    return end, text


@runtime_checkable
class Generator(Protocol):
    """What the search needs from a generator (DESIGN §3); each call returns its candidates and its usage."""

    def propose(self, prompt: str, k: int, *, temperature: float = 0.8, max_new_tokens: int = 64,
                stop: Sequence[str] | None = None, seed: int | None = None) -> Generation:
        """Sample ``k`` continuations of ``prompt``, each with its summed untempered token log-prob."""
        ...

    def score_choices(self, prompt: str, choices: Sequence[str]) -> Generation:
        """The log-prob of each given continuation of ``prompt``."""
        ...
