"""The SRM as a LangGraph node between "propose" and "expand"."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from srm_agent.cache import ScoreCache
from srm_agent.rule import RULE_DEFAULTS, check_rule_params
from srm_agent.verify import Scorer, verify_candidates


def rule_params(**overrides: Any) -> dict[str, Any]:
    """The rule's parameters with ``overrides`` applied, checked now rather than at the first call."""
    unknown = set(overrides) - set(RULE_DEFAULTS)
    if unknown:
        raise TypeError(f"unknown rule parameter(s): {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(RULE_DEFAULTS)}")
    params = {**RULE_DEFAULTS, **overrides}
    check_rule_params(**params)
    return params


def emit(event: dict[str, Any]) -> None:
    """Send a custom stream event when running inside a graph; a no-op when called directly."""
    from langgraph.config import get_stream_writer

    try:
        writer = get_stream_writer()
    except RuntimeError:  # not inside a runnable context
        return
    writer(event)


def make_srm_node(srm: Scorer, cache: ScoreCache | None = None, *, state_key: str = "state",
                  candidates_key: str = "candidates", output_key: str = "verdict", seed: int | None = None,
                  **rule: Any) -> Callable[[Mapping[str, Any]], dict[str, Any]]:
    """A node that reads ``state`` and ``candidates`` from the graph state and writes the verdict.

    Scores come from ``cache`` where present; the misses are scored in one SRM batch and
    written back. Each verdict is also emitted as a custom stream event
    (``graph.stream(..., stream_mode="custom")``) when the node runs inside a graph.
    ``seed`` makes stochastic acceptance reproducible; ``rule`` overrides the DESIGN §1 defaults.
    """
    params = rule_params(**rule)

    def srm_node(graph_state: Mapping[str, Any]) -> dict[str, Any]:
        for key in (state_key, candidates_key):
            if key not in graph_state:
                raise KeyError(f"the SRM node needs '{key}' in the graph state")
        verdict = verify_candidates(srm, graph_state[state_key], graph_state[candidates_key],
                                    cache=cache, seed=seed, **params).to_dict()
        emit({"event": "srm_verdict", **verdict})
        return {output_key: verdict}

    srm_node.__name__ = "srm"
    return srm_node
