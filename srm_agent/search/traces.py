"""A finished search as a trace (the format ``srm_agent.trace`` validates and renders), and trace sinks.

A sink is any callable that takes the trace dict and returns where it went; the search calls it once
per finished search. ``FolderSink`` writes one JSON file per search, named by the search's own content
(task, strategy, evaluator and a hash of the problem and the settings), so a replayed search rewrites its
file instead of adding another.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from srm_agent.search.tree import Tree

TRACE_VERSION = 2
NODE_FIELDS = ("id", "parent", "action", "depth", "decision", "reward", "expanded", "terminal", "solved", "visits",
               "invalid")


@runtime_checkable
class TraceSink(Protocol):
    def __call__(self, trace: dict[str, Any]) -> str:
        """Store one trace; return where it went (a path, a key)."""
        ...


def search_trace(config: Any, tree: Tree, result: dict[str, Any]) -> dict[str, Any]:
    """The trace of a finished search: every node with its decision record, and the result."""
    on_path = set(result.get("path") or [])
    nodes = []
    for node in tree:
        value = node["value_sum"] / node["visits"] if node["visits"] else None
        nodes.append({**{key: node[key] for key in NODE_FIELDS}, "state": node["state"] or "", "value": value,
                      "on_path": node["id"] in on_path})
    return {
        "version": TRACE_VERSION, "task": config.task.name, "problem": tree[0]["state"] or "",
        "strategy": config.strategy.name, "evaluator": config.evaluator.name,
        "params": json.loads(json.dumps(config.params, default=str)),
        "nodes": nodes, "path": result.get("path") or [0], "solved": bool(result.get("solved")),
        "answer": result.get("answer"), "failure": result.get("failure"), "usage": result.get("usage") or {},
    }


def search_id(trace: dict[str, Any]) -> str:
    """A short hash of what the trace searched and how: equal for a search and its replay."""
    payload = json.dumps([trace[key] for key in ("task", "problem", "strategy", "evaluator", "params")],
                         sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:12]


class FolderSink:
    """Write each trace as ``<task>-<strategy>-<evaluator>-<search id>.json`` in ``directory``."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = Path(directory)

    def __call__(self, trace: dict[str, Any]) -> str:
        from srm_agent.trace import write_trace

        name = f"{trace['task']}-{trace['strategy']}-{trace['evaluator']}-{search_id(trace)}.json"
        return str(write_trace(trace, self.directory / name))
