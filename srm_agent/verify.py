"""One expansion verified end to end: cached SRM scores, only the misses scored, then the rule.

The LangGraph node, the LangChain tool and the CLI all go through ``verify_candidates``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from srm_agent.cache import ScoreCache, score_key
from srm_agent.errors import InputError
from srm_agent.rule import MAX_SEED, Candidate, Verdict, as_candidate, speculative_verify


@runtime_checkable
class Scorer(Protocol):
    """What verification needs from an SRM: logits for actions in a state, and a cache identity."""

    fingerprint: str

    def score(self, state: str, actions: Sequence[str]) -> list[float]:
        ...


def cached_scores(scorer: Scorer, state: str, texts: Sequence[str],
                  cache: ScoreCache | None) -> tuple[list[float], list[bool]]:
    """SRM logits for ``texts`` in ``state`` and whether each came from the cache.

    One ``get_many``, one batched ``score`` of the distinct misses, one ``set_many``.
    """
    distinct = list(dict.fromkeys(texts))
    keys = [score_key(scorer.fingerprint, state, t) for t in distinct]
    found = cache.get_many(keys) if cache is not None else [None] * len(distinct)
    misses = [i for i, v in enumerate(found) if v is None]
    if misses:
        fresh = scorer.score(state, [distinct[i] for i in misses])
        if len(fresh) != len(misses):
            raise RuntimeError(f"the SRM returned {len(fresh)} scores for {len(misses)} actions")
        for i, value in zip(misses, fresh):
            found[i] = float(value)
        if cache is not None:
            cache.set_many({keys[i]: found[i] for i in misses})
    by_text = dict(zip(distinct, found))
    hit = set(distinct) - {distinct[i] for i in misses}
    return [by_text[t] for t in texts], [t in hit for t in texts]


def seeded_rng(seed: int | None, state: str, texts: Sequence[str]) -> np.random.Generator:
    """A generator fixed by the seed and the expansion itself, so a verdict reproduces in any call order."""
    if seed is None:
        return np.random.default_rng()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed <= MAX_SEED:
        raise InputError("seed", f"must be an integer from 0 to 2**64 - 1, got {seed!r}")
    digest = hashlib.sha256("\x00".join([state, *texts]).encode("utf-8")).digest()
    return np.random.default_rng([seed, int.from_bytes(digest[:8], "big")])


def verify_candidates(scorer: Scorer, state: str, candidates: Sequence[Candidate | Mapping[str, Any]], *,
                      cache: ScoreCache | None = None, seed: int | None = None, **rule: Any) -> Verdict:
    """Score ``candidates`` in ``state`` (through the cache) and apply the speculative rule."""
    if not isinstance(state, str):
        raise InputError("state", f"must be a string, got {type(state).__name__}")
    if len(candidates) == 0:
        raise InputError("candidates", "must hold at least one candidate")
    cands = [as_candidate(c, i) for i, c in enumerate(candidates)]  # fail on bad input before any scoring
    texts = [c.text.strip() for c in cands]
    logits, cached = cached_scores(scorer, state, texts, cache)
    return speculative_verify(cands, logits, cached=cached, rng=seeded_rng(seed, state, texts), **rule)
