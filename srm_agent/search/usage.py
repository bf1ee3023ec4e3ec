"""A search's cost, split by role: proposing, evaluating, predicting states (the world model).

Every generator call's own ``Usage`` is charged to the role that made it; the totals over roles keep
the flat keys reports have always read (``generator_calls``, ``prompt_tokens``, ``generated_tokens``).
"""

from __future__ import annotations

from typing import Any

from srm_agent.generators.base import Usage

ROLES = ("proposal", "evaluation", "world_model")
COUNTERS = ("srm_calls", "srm_scored", "cache_hits", "expansions", "invalid_steps")
TOTALS = {"generator_calls": "calls", "prompt_tokens": "prompt_tokens", "generated_tokens": "generated_tokens"}


def new_usage() -> dict[str, Any]:
    return {**{role: Usage().to_dict() for role in ROLES}, **{key: 0 for key in (*TOTALS, *COUNTERS)},
            "srm_seconds": 0.0, "wall_s": 0.0}


def charge(usage: dict[str, Any], role: str, cost: Usage, **counters: float) -> dict[str, Any]:
    """A copy of ``usage`` with ``cost`` charged to ``role`` and the given counters added."""
    if role not in ROLES:
        raise ValueError(f"unknown usage role {role!r}; roles: {', '.join(ROLES)}")
    out = {**usage, role: dict(usage[role])}
    for total, field in TOTALS.items():
        value = getattr(cost, field)
        out[role][field] += value
        out[total] += value
    for key, value in counters.items():
        out[key] += value
    return out


def count(usage: dict[str, Any], **counters: float) -> dict[str, Any]:
    """A copy of ``usage`` with counters added (no generator cost)."""
    out = dict(usage)
    for key, value in counters.items():
        out[key] += value
    return out
