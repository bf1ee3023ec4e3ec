"""The trace format (version 2) as pydantic models, plus the tree-consistency checks a schema cannot state.

A trace lists every node a search created, rejected candidates included, each with the evaluator's
decision record, plus the returned path, the outcome and the usage figures. Node ids are 0..n-1
in creation order, so a parent always precedes its children. Unknown extra keys are kept:
producers may record more than the viewer shows. Version 1 files (written before strategies and
evaluators became plug-ins) are read by upgrading them first.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, model_serializer, model_validator

from srm_agent.errors import InputError

VERSION = 2
READABLE_VERSIONS = (1, 2)

Count = Annotated[int, Field(ge=0)]


class _Record(BaseModel):
    # strict: "yes" is not a boolean and 1.0 not a node id; no NaN or infinity (the file is JSON)
    model_config = ConfigDict(strict=True, extra="allow", allow_inf_nan=False)


class TraceDecision(_Record):
    """The evaluator's record for one candidate: the rule's fields (SRM) or the self-evaluation's."""

    accepted: bool
    text: str | None = None
    # the speculative rule (srm_agent.rule)
    logprob: float | None = None
    num_tokens: Count | None = None
    p_llm: float | None = None
    srm_logit: float | None = None
    q_srm: float | None = None
    sr: float | None = None
    rc: float | None = None
    score: float | None = None
    p_accept: float | None = None
    cached: bool | None = None
    count: Count | None = None
    # self-evaluation
    intuition: float | None = None
    self_eval: float | None = None
    reward: float | None = None

    @model_serializer(mode="wrap")
    def _as_given(self, handler: Any) -> dict[str, Any]:
        """Write back the fields the evaluator gave, not a null for every field another evaluator has."""
        return {k: v for k, v in handler(self).items() if k in self.model_fields_set}


class TraceNode(_Record):
    """One node: the root (parent null, no action) or a candidate action applied to its parent."""

    id: Count
    parent: Count | None
    action: str | None = None
    depth: Count
    state: str = ""
    decision: TraceDecision | None = None
    reward: float | None = None
    expanded: bool = False
    terminal: bool = False
    solved: bool = False
    visits: Count = 0
    value: float | None = None
    invalid: str | None = None
    on_path: bool | None = None  # filled from ``path`` when absent

    @property
    def rejected(self) -> bool:
        return self.decision is not None and not self.decision.accepted


class Trace(_Record):
    """A whole search; ``Trace.model_validate`` also checks that the nodes form one consistent tree."""

    version: Literal[2]
    task: str
    problem: str  # a readable summary of the problem, never its reference answer
    strategy: str
    evaluator: str
    params: dict[str, Any] = Field(default_factory=dict)
    nodes: list[TraceNode] = Field(min_length=1)
    path: list[Count] = Field(min_length=1)
    solved: bool
    answer: str | None = None
    failure: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self, info: ValidationInfo) -> Trace:
        _check_names(self, registered=(info.context or {}).get("registered_names", True))
        _check_tree(self.nodes)
        _check_path(self.nodes, self.path)
        _check_usage(self.usage)
        return self


# ---------------------------------------------------------------------------------------------
# Consistency (raised as InputError naming the field; validate_trace passes it on unchanged)


def _need(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise InputError(field, message)


def _check_names(trace: Trace, registered: bool = True) -> None:
    """Strategy and evaluator names the search registry knows; for a trace only viewed (written by another
    process, perhaps with a user's own plug-in registered there), any identifier."""
    from srm_agent.search.registry import evaluator_names, strategy_names

    for field, known in (("strategy", strategy_names()), ("evaluator", evaluator_names())):
        value = getattr(trace, field)
        if registered:
            _need(value in known, field, f"must be one of {', '.join(known)}, got {value!r}")
        else:
            _need(value.isidentifier(), field, f"must be a strategy or evaluator name, got {value!r}")


def _check_tree(nodes: list[TraceNode]) -> None:
    for i, n in enumerate(nodes):
        where = f"nodes[{i}]"
        _need(n.id == i, f"{where}.id", f"must be {i} (ids are 0..n-1 in order), got {n.id}")
        if i == 0:
            _need(n.parent is None, f"{where}.parent", "the first node is the root: its parent must be null")
            _need(n.depth == 0, f"{where}.depth", "the root's depth must be 0")
            continue
        _need(n.parent is not None, f"{where}.parent", "only node 0 is the root; every other node has a parent")
        assert n.parent is not None
        _need(n.parent < len(nodes), f"{where}.parent", f"unknown node {n.parent}")
        _need(n.parent < i, f"{where}.parent", f"node {n.parent} comes after node {i}; parents precede children")
        parent = nodes[n.parent]
        _need(n.depth == parent.depth + 1, f"{where}.depth",
              f"is {n.depth} but its parent {n.parent} has depth {parent.depth}")
        _need(not parent.rejected, f"{where}.parent",
              f"node {n.parent} is a rejected candidate, which is never expanded")
        _need(n.action is not None, f"{where}.action", "a candidate's action must be a string, got null")
    for i, n in enumerate(nodes):
        _need(not (n.expanded and n.rejected), f"nodes[{i}].expanded", "a rejected candidate is never expanded")


def _check_path(nodes: list[TraceNode], path: list[int]) -> None:
    for j, node_id in enumerate(path):
        _need(node_id < len(nodes), f"path[{j}]", f"unknown node {node_id}")
        expected = None if j == 0 else path[j - 1]
        actual = nodes[node_id].parent
        _need(actual == expected, f"path[{j}]", "must start at the root" if j == 0 else
              f"node {node_id}'s parent is {actual}, not {expected}")
    on_path = set(path)
    for n in nodes:
        if n.on_path is None:
            n.on_path = n.id in on_path
        else:
            _need(n.on_path == (n.id in on_path), f"nodes[{n.id}].on_path",
                  f"is {str(n.on_path).lower()} but path {'does not contain' if n.on_path else 'contains'} "
                  f"node {n.id}")


def _is_count(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v >= 0


def _check_usage(usage: dict[str, Any]) -> None:
    """Figures are numbers >= 0, or objects of them per role (``"proposal": {"calls": 3, ...}``)."""
    for key, v in usage.items():
        if isinstance(v, dict):
            for sub, x in v.items():
                _need(_is_count(x), f"usage.{key}.{sub}", f"must be a finite number >= 0, got {x!r}")
        else:
            _need(_is_count(v), f"usage.{key}", f"must be a finite number >= 0 or an object of them, got {v!r}")


# ---------------------------------------------------------------------------------------------
# Reading plain data


def _kind(x: Any) -> str:
    return "null" if x is None else type(x).__name__


def _upgrade_v1(data: dict[str, Any]) -> dict[str, Any]:
    """Version 1 -> 2: evaluator "none" became "prior"; decisions always say whether they accepted;
    ``invalid`` is a reason or null; states are strings. Anything else is left for the checks."""
    out = {**data, "version": 2}
    if out.get("evaluator") == "none":
        out["evaluator"] = "prior"
    if isinstance(out.get("nodes"), list):
        nodes = []
        for n in out["nodes"]:
            if isinstance(n, dict):
                n = dict(n)
                if isinstance(n.get("decision"), dict) and not isinstance(n["decision"].get("accepted"), bool):
                    n["decision"] = None
                if isinstance(n.get("invalid"), bool):
                    n["invalid"] = "invalid action" if n["invalid"] else None
                if n.get("state") is None:
                    n["state"] = ""
                if n.get("visits") is None:
                    n.pop("visits", None)
            nodes.append(n)
        out["nodes"] = nodes
    return out


def _field(loc: tuple[str | int, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else f".{part}" if out else str(part)
    return out or "trace"


_MESSAGES = {
    "bool_type": "must be true or false",
    "int_type": "must be an integer",
    "float_type": "must be a finite number",
    "finite_number": "must be a finite number",
    "string_type": "must be a string",
    "dict_type": "must be an object",
    "model_type": "must be an object",
    "list_type": "must be a list",
}


def _message(error: dict[str, Any]) -> str:
    kind = error["type"]
    if kind == "missing":
        return "missing"
    text = _MESSAGES.get(kind) or error["msg"].replace("Input should be", "must be").replace(
        "List should have", "must have")
    got = error.get("input")
    shown = repr(got) if not isinstance(got, (dict, list)) else _kind(got)
    return f"{text}, got {shown[:80]}"


def parse_trace(data: Any, *, registered_names: bool = True) -> Trace:
    """Validate plain JSON data (version 1 or 2) as a ``Trace``; ``InputError`` names the first bad field.

    ``registered_names=False`` accepts strategy and evaluator names this process has not registered."""
    _need(isinstance(data, dict), "trace", f"must be a JSON object, got {_kind(data)}")
    _need("version" in data, "version", "missing")
    version = data["version"]
    _need(type(version) is int and version in READABLE_VERSIONS, "version",
          f"unsupported trace version {version!r} (this reader knows {', '.join(map(str, READABLE_VERSIONS))})")
    if version == 1:
        data = _upgrade_v1(data)
    try:
        return Trace.model_validate(data, context={"registered_names": registered_names})
    except ValidationError as exc:
        error = exc.errors()[0]
        cause = (error.get("ctx") or {}).get("error")
        if isinstance(cause, InputError):
            raise InputError(cause.field, cause.message) from None
        raise InputError(_field(error["loc"]), _message(error)) from None


def validate_trace(data: Any) -> dict[str, Any]:
    """``parse_trace`` returning plain data: the version-2 trace with optional keys filled in."""
    return parse_trace(data).model_dump()
