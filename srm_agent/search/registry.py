"""Registries of search strategies and evaluators: the names the search, evals.run and trace files accept.

A built-in is imported on first use. ``register_strategy`` / ``register_evaluator`` add a user's own
under a name, so ``build_tree_search(strategy="mine")`` and traces of such searches work without
editing the package (an object may also be passed directly, unregistered).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

# name -> "module:factory" of the built-ins (imported lazily, so importing the registry stays cheap)
_BUILTIN_STRATEGIES = {
    "bfs": "srm_agent.search.strategies.bfs:BFS",
    "dfs": "srm_agent.search.strategies.dfs:DFS",
    "beam": "srm_agent.search.strategies.beam:Beam",
    "mcts": "srm_agent.search.strategies.mcts:MCTS",
}
_BUILTIN_EVALUATORS = {
    "srm": "srm_agent.search.evaluators.srm:SRMEvaluator",
    "self_eval": "srm_agent.search.evaluators.self_eval:SelfEvaluator",
    "prior": "srm_agent.search.evaluators.prior:PriorEvaluator",
    "random": "srm_agent.search.evaluators.random:RandomEvaluator",
}
_STRATEGIES: dict[str, Callable[..., Any]] = {}
_EVALUATORS: dict[str, Callable[..., Any]] = {}


def _register(table: dict[str, Callable[..., Any]], builtins: dict[str, str], kind: str, name: str,
              factory: Callable[..., Any]) -> None:
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a {kind} name is an identifier, got {name!r}")
    if name in builtins or (name in table and table[name] is not factory):
        raise ValueError(f"a {kind} named {name!r} is already registered")
    table[name] = factory


def _lookup(table: dict[str, Callable[..., Any]], builtins: dict[str, str], kind: str, name: str
            ) -> Callable[..., Any]:
    if name in table:
        return table[name]
    if name in builtins:
        module, _, attribute = builtins[name].partition(":")
        table[name] = getattr(importlib.import_module(module), attribute)
        return table[name]
    raise ValueError(f"unknown {kind} {name!r}; known: {', '.join(sorted({*builtins, *table}))}")


def register_strategy(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**options)`` available as strategy ``name``."""
    _register(_STRATEGIES, _BUILTIN_STRATEGIES, "strategy", name, factory)


def register_evaluator(name: str, factory: Callable[..., Any]) -> None:
    """Make ``factory(**options)`` available as evaluator ``name``."""
    _register(_EVALUATORS, _BUILTIN_EVALUATORS, "evaluator", name, factory)


def strategy_factory(name: str) -> Callable[..., Any]:
    return _lookup(_STRATEGIES, _BUILTIN_STRATEGIES, "strategy", name)


def evaluator_factory(name: str) -> Callable[..., Any]:
    return _lookup(_EVALUATORS, _BUILTIN_EVALUATORS, "evaluator", name)


def strategy_names() -> list[str]:
    return sorted({*_BUILTIN_STRATEGIES, *_STRATEGIES})


def evaluator_names() -> list[str]:
    return sorted({*_BUILTIN_EVALUATORS, *_EVALUATORS})


def ensure_registered(kind: str, obj: Any) -> None:
    """Register an object passed to the search under its ``name`` (its class as the factory), unless that name
    is already known, so traces and reports of a user's own strategy or evaluator validate."""
    name = getattr(obj, "name", None)
    if not isinstance(name, str) or not name:
        raise ValueError(f"a {kind} object needs a non-empty string attribute 'name', got {name!r}")
    known = strategy_names() if kind == "strategy" else evaluator_names()
    if name not in known:
        (register_strategy if kind == "strategy" else register_evaluator)(name, type(obj))
