"""Search traces: the JSON record of one tree search, and an offline HTML viewer for it.

A trace (version 1) lists every node the search created, rejected candidates included, with the
decision record that accepted or rejected it, plus the returned path, the outcome and the usage
figures. ``write_trace`` validates before writing so a bad trace fails where it is made, not
where it is viewed. ``render_html`` draws the tree as one self-contained page (inline SVG, CSS
and JS; nothing fetched), because traces get opened offline and attached to reports.

``python -m srm_agent.trace view TRACE.json [-o tree.html]`` renders a trace file.
"""

from __future__ import annotations

import argparse
import html
import json
import math
import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from srm_agent.console import run_command
from srm_agent.errors import InputError

VERSION = 2
DECISION_NUMBERS = ("logprob", "p_llm", "srm_logit", "q_srm", "sr", "rc", "score", "p_accept")
DECISION_INTS = ("num_tokens", "count")
DECISION_BOOLS = ("accepted", "cached")
USAGE_INTS = ("generator_calls", "prompt_tokens", "generated_tokens", "srm_calls", "cache_hits")

# Node colours; the browser test looks for GREEN and RED in a screenshot.
GREEN, RED, GREY = "#2f9e44", "#e03131", "#adb5bd"
PATH_BLUE, GOLD = "#1864ab", "#f59f00"


# ---------------------------------------------------------------------------------------------
# Validation


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


def _kind(x: Any) -> str:
    return "null" if x is None else type(x).__name__


def _need(cond: bool, field: str, message: str) -> None:
    if not cond:
        raise InputError(field, message)


def _check_decision(d: Any, where: str) -> None:
    _need(d is None or isinstance(d, dict), where, f"must be an object or null, got {_kind(d)}")
    if d is None:
        return
    for key in DECISION_NUMBERS:
        v = d.get(key)
        _need(v is None or _is_number(v), f"{where}.{key}", f"must be a finite number or null, got {v!r}")
    for key in DECISION_INTS:
        v = d.get(key)
        _need(v is None or _is_int(v), f"{where}.{key}", f"must be an integer or null, got {v!r}")
    for key in DECISION_BOOLS:
        v = d.get(key)
        _need(v is None or isinstance(v, bool), f"{where}.{key}", f"must be true, false or null, got {v!r}")
    _need(d.get("text") is None or isinstance(d["text"], str), f"{where}.text", "must be a string or null")


def _check_node(n: Any, i: int) -> None:
    where = f"nodes[{i}]"
    _need(isinstance(n, dict), where, f"must be an object, got {_kind(n)}")
    for key in ("id", "parent", "depth"):
        _need(key in n, f"{where}.{key}", "missing")
    _need(_is_int(n["id"]) and n["id"] >= 0, f"{where}.id", f"must be an integer >= 0, got {n['id']!r}")
    _need(n["parent"] is None or _is_int(n["parent"]), f"{where}.parent", f"must be a node id or null, "
          f"got {n['parent']!r}")
    _need(_is_int(n["depth"]) and n["depth"] >= 0, f"{where}.depth", f"must be an integer >= 0, got {n['depth']!r}")
    action = n.get("action")
    if n["parent"] is None:
        _need(action is None or isinstance(action, str), f"{where}.action", "must be a string or null")
    else:
        _need(isinstance(action, str), f"{where}.action", f"a candidate's action must be a string, got {_kind(action)}")
    _need(n.get("state") is None or isinstance(n["state"], str), f"{where}.state", "must be a string or null")
    for key in ("expanded", "terminal", "solved"):
        _need(isinstance(n.get(key, False), bool), f"{where}.{key}", f"must be true or false, got {n.get(key)!r}")
    v = n.get("visits")
    _need(v is None or (_is_int(v) and v >= 0), f"{where}.visits", f"must be an integer >= 0 or null, got {v!r}")
    v = n.get("value")
    _need(v is None or _is_number(v), f"{where}.value", f"must be a finite number or null, got {v!r}")
    v = n.get("invalid")
    _need(v is None or isinstance(v, (str, bool)), f"{where}.invalid", "must be a string, a boolean or null")
    _check_decision(n.get("decision"), f"{where}.decision")


def _rejected(node: Mapping[str, Any]) -> bool:
    d = node.get("decision")
    return isinstance(d, dict) and d.get("accepted") is False


def validate_trace(data: Any) -> dict[str, Any]:
    """Check a trace against format version 1; return it with optional keys filled in.

    Raises ``InputError`` naming the first bad field (``nodes[3].parent: unknown node 17``).
    Unknown extra keys are kept: producers may record more than the viewer shows.
    """
    _need(isinstance(data, dict), "trace", f"must be a JSON object, got {_kind(data)}")
    _need("version" in data, "version", "missing")
    _need(_is_int(data["version"]) and data["version"] in (1, VERSION), "version",
          f"unsupported trace version {data['version']!r} (this reader knows {VERSION})")
    for key in ("task", "problem", "strategy", "evaluator", "nodes", "path", "solved"):
        _need(key in data, key, "missing")
    for key in ("task", "problem"):
        _need(isinstance(data[key], str), key, f"must be a string, got {_kind(data[key])}")
    from srm_agent.search.registry import evaluator_names, strategy_names

    strategies, evaluators = strategy_names(), [*evaluator_names(), "none"]  # "none": version 1's prior
    _need(data["strategy"] in strategies, "strategy", f"must be one of {', '.join(strategies)}, "
          f"got {data['strategy']!r}")
    _need(data["evaluator"] in evaluators, "evaluator", f"must be one of {', '.join(evaluators)}, "
          f"got {data['evaluator']!r}")
    _need(isinstance(data.get("params", {}), dict), "params", "must be an object")
    _need(isinstance(data["solved"], bool), "solved", f"must be true or false, got {data['solved']!r}")
    for key in ("answer", "failure"):
        _need(data.get(key) is None or isinstance(data[key], str), key, f"must be a string or null, "
              f"got {_kind(data.get(key))}")
    usage = data.get("usage", {})
    _need(isinstance(usage, dict), "usage", "must be an object")
    for key, v in usage.items():
        if isinstance(v, dict):  # a role's usage: calls and tokens
            for part, x in v.items():
                _need(_is_int(x) and x >= 0, f"usage.{key}.{part}", f"must be an integer >= 0, got {x!r}")
        elif key in USAGE_INTS:
            _need(_is_int(v) and v >= 0, f"usage.{key}", f"must be an integer >= 0, got {v!r}")
        else:
            _need(v is None or _is_number(v), f"usage.{key}", f"must be a finite number or null, got {v!r}")

    nodes = data["nodes"]
    _need(isinstance(nodes, list) and nodes, "nodes", "must be a non-empty list")
    index: dict[int, int] = {}
    for i, n in enumerate(nodes):
        _check_node(n, i)
        _need(n["id"] not in index, f"nodes[{i}].id", f"duplicate id {n['id']} (also nodes[{index.get(n['id'])}])")
        index[n["id"]] = i
    roots = [i for i, n in enumerate(nodes) if n["parent"] is None]
    _need(len(roots) == 1, "nodes", f"must have exactly one root (parent null), found {len(roots)}")
    _need(nodes[roots[0]]["depth"] == 0, f"nodes[{roots[0]}].depth", "the root's depth must be 0")
    for i, n in enumerate(nodes):
        if n["parent"] is None:
            continue
        _need(n["parent"] in index, f"nodes[{i}].parent", f"unknown node {n['parent']}")
        parent = nodes[index[n["parent"]]]
        # Depth strictly grows along parent links, which also rules out cycles.
        _need(n["depth"] == parent["depth"] + 1, f"nodes[{i}].depth",
              f"is {n['depth']} but its parent {n['parent']} has depth {parent['depth']}")
        _need(not _rejected(parent), f"nodes[{i}].parent", f"node {n['parent']} is a rejected candidate, "
              "which is never expanded")
    for i, n in enumerate(nodes):
        _need(not (n.get("expanded") and _rejected(n)), f"nodes[{i}].expanded",
              "a rejected candidate is never expanded")

    path = data["path"]
    _need(isinstance(path, list) and path, "path", "must be a non-empty list of node ids")
    for j, node_id in enumerate(path):
        _need(_is_int(node_id), f"path[{j}]", f"must be a node id, got {node_id!r}")
        _need(node_id in index, f"path[{j}]", f"unknown node {node_id}")
        expected = None if j == 0 else path[j - 1]
        actual = nodes[index[node_id]]["parent"]
        _need(actual == expected, f"path[{j}]", "must start at the root" if j == 0 else
              f"node {node_id}'s parent is {actual}, not {expected}")
    return {"params": {}, "answer": None, "failure": None, "usage": {}, **data}


# ---------------------------------------------------------------------------------------------
# Reading and writing


def _to_builtin(obj: Any) -> Any:
    """JSON fallback for numpy scalars and arrays, which graph code often leaves in decisions."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def _atomic_write_text(path: Path, text: str) -> None:
    """Write via a temp file in the same folder and rename, so readers never see half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_trace(trace: Mapping[str, Any], path: str | os.PathLike[str]) -> Path:
    """Validate ``trace`` and write it as UTF-8 JSON to ``path`` atomically; return the path."""
    try:
        plain = json.loads(json.dumps(trace, default=_to_builtin))
    except (TypeError, ValueError) as exc:
        raise InputError("trace", f"is not JSON serialisable: {exc}") from None
    data = validate_trace(plain)
    out = Path(path)
    _atomic_write_text(out, json.dumps(data, ensure_ascii=False, allow_nan=False, indent=1) + "\n")
    return out


def load_trace(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read and validate a trace file; a missing file or bad JSON is an ``InputError`` too."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(p), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(p), "is a directory, not a trace file") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"is not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(str(p), f"is not valid JSON: {exc}") from None
    return validate_trace(data)


# ---------------------------------------------------------------------------------------------
# HTML viewer

_CSS = """
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;color:#212529;
background:#f8f9fa}
header{padding:14px 22px 10px;background:#fff;border-bottom:1px solid #dee2e6}
h1{font-size:19px;margin:0 0 8px;display:flex;align-items:center;gap:10px;flex-wrap:wrap}
.badge{font-size:12px;font-weight:600;padding:2px 9px;border-radius:10px;color:#fff}
.badge.ok{background:#2f9e44}.badge.no{background:#868e96}
.row{display:flex;flex-wrap:wrap;gap:6px 22px;margin:4px 0}
.kv b{font-weight:600;color:#495057;margin-right:4px}
.boxes{display:grid;grid-template-columns:1fr 1fr;gap:8px;margin:8px 0}
.box{background:#f1f3f5;border-radius:6px;padding:4px 10px;min-width:0}
.box .k{font-size:11px;color:#868e96}
.box pre{margin:0;max-height:5.7em;overflow:auto;white-space:pre-wrap;word-break:break-word;
font:12px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
.box.fail{background:#fff5f5;color:#c92a2a;grid-column:1/-1}
.cards{display:flex;flex-wrap:wrap;gap:8px;margin:8px 0 4px}
.card{background:#f1f3f5;border-radius:6px;padding:3px 10px;min-width:92px}
.card .v{font-size:16px;font-weight:600}.card .k{font-size:11px;color:#868e96}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;align-items:center;font-size:12.5px;color:#495057;margin-top:6px}
.legend svg{vertical-align:middle;margin-right:4px}
.tree{overflow:auto;padding:8px 0 24px}
svg.t text{font-family:inherit}
svg.t .nd{cursor:default}
svg.t .nd:hover>.sh{stroke:#000;stroke-width:2.5}
svg.t .e{fill:none;stroke:#ced4da;stroke-width:1.3}
svg.t .e.rej{stroke-dasharray:3 3}
svg.t .e.path{stroke:#1864ab;stroke-width:4}
svg.t .dp{font-size:11px;fill:#adb5bd}
svg.t .id{font-size:10px;font-weight:600;fill:#fff;text-anchor:middle}
svg.t .lb{font-size:10.5px;fill:#343a40;text-anchor:middle;paint-order:stroke;stroke:#f8f9fa;stroke-width:4px;
stroke-linejoin:round}
svg.t .lb.rej{fill:#868e96}svg.t .lb.path{font-weight:600}
svg.t .star{font-size:13px}
#tip{position:fixed;display:none;pointer-events:none;max-width:440px;background:#212529;color:#f8f9fa;
border-radius:6px;padding:8px 10px;font-size:12.5px;box-shadow:0 4px 14px rgba(0,0,0,.25);z-index:9}
#tip table{border-collapse:collapse}#tip td{padding:0 8px 0 0;vertical-align:top}
#tip td:first-child{color:#adb5bd;white-space:nowrap}#tip td:last-child{white-space:pre-wrap;word-break:break-word}
#tip .h{font-weight:600;margin-bottom:4px}
"""

# Moves each node's <title> into a styled tooltip (the <title> stays the no-JS fallback).
_JS = """
(function(){
var tip=document.getElementById('tip');
document.querySelectorAll('svg.t .nd').forEach(function(g){
  var t=g.querySelector('title'); if(!t) return;
  var lines=t.textContent.split('\\n'); g.removeChild(t);
  var s=lines.findIndex(function(l){return l.indexOf('state: ')===0;});
  if(s>0) lines=lines.slice(0,s).concat([lines.slice(s).join('\\n')]);
  g.addEventListener('mouseenter',function(){
    tip.textContent='';
    var h=document.createElement('div'); h.className='h'; h.textContent=lines[0]; tip.appendChild(h);
    var tb=document.createElement('table');
    lines.slice(1).forEach(function(l){
      var i=l.indexOf(': '); var tr=document.createElement('tr');
      var a=document.createElement('td'), b=document.createElement('td');
      a.textContent=i<0?'':l.slice(0,i); b.textContent=i<0?l:l.slice(i+2);
      tr.appendChild(a); tr.appendChild(b); tb.appendChild(tr);
    });
    tip.appendChild(tb); tip.style.display='block';
  });
  g.addEventListener('mousemove',function(e){
    var x=e.clientX+14, y=e.clientY+14, w=tip.offsetWidth, hh=tip.offsetHeight;
    if(x+w>innerWidth-4) x=Math.max(4,e.clientX-w-14);
    if(y+hh>innerHeight-4) y=Math.max(4,e.clientY-hh-14);
    tip.style.left=x+'px'; tip.style.top=y+'px';
  });
  g.addEventListener('mouseleave',function(){tip.style.display='none';});
});
// A wide tree whose root lies beyond the right edge opens scrolled to centre the root.
var root=document.querySelector('svg.t .nd.root'), box=document.querySelector('main.tree');
if(root){
  var r=root.getBoundingClientRect();
  if(r.right>box.clientWidth) box.scrollLeft=r.left+r.width/2-box.clientWidth/2;
}
})();
"""


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _fmt(x: Any) -> str:
    """Compact figures for tooltips; nulls (self_eval / none evaluators) show as a dash."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3e}"
    return str(x)


def _clip(text: str, limit: int, *, one_line: bool = True) -> str:
    text = " ".join(text.split()) if one_line else text.strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _wrap(text: str, width: int, lines: int) -> list[str]:
    """Greedy word wrap into at most ``lines`` lines, the last one ellipsised."""
    words, out, cur = " ".join(text.split()).split(" "), [], ""
    for w in words:
        if len(w) > width:
            w = w[: width - 1] + "…"
        if cur and len(cur) + 1 + len(w) > width:
            out.append(cur)
            cur = w
        else:
            cur = f"{cur} {w}" if cur else w
    if cur:
        out.append(cur)
    if len(out) > lines:
        out = out[:lines]
        out[-1] = out[-1][: width - 1].rstrip() + "…"
    return out


def _status(node: Mapping[str, Any]) -> str:
    d = node.get("decision")
    if node.get("parent") is None or not isinstance(d, dict) or d.get("accepted") is None:
        return "neutral"
    return "accepted" if d["accepted"] else "rejected"


def _tooltip(node: Mapping[str, Any]) -> str:
    d = node.get("decision") if isinstance(node.get("decision"), dict) else {}
    head = f"node {node['id']} · depth {node['depth']} · " + ("root" if node["parent"] is None else _status(node))
    flags = [k for k in ("expanded", "terminal", "solved") if node.get(k)]
    if node.get("invalid"):
        flags.append("invalid")
    lines = [head, f"action: {_clip(node.get('action') or '(root)', 400)}"]
    if d:
        lines += [f"SR: {_fmt(d.get('sr'))}", f"RC: {_fmt(d.get('rc'))}", f"score: {_fmt(d.get('score'))}",
                  f"p_accept: {_fmt(d.get('p_accept'))}", f"p_llm: {_fmt(d.get('p_llm'))}",
                  f"q_srm: {_fmt(d.get('q_srm'))}", f"srm_logit: {_fmt(d.get('srm_logit'))}",
                  f"cached: {_fmt(d.get('cached'))}"]
        if (d.get("count") or 1) > 1:
            lines.append(f"count: {d['count']}")
    for key in ("visits", "value"):
        if node.get(key) is not None:
            lines.append(f"{key}: {_fmt(node[key])}")
    if isinstance(node.get("invalid"), str):
        lines.append(f"invalid: {_clip(node['invalid'], 200)}")
    if flags:
        lines.append(f"flags: {', '.join(flags)}")
    if node.get("state"):
        lines.append(f"state: {_clip(node['state'], 600, one_line=False)}")  # last: may span lines
    return "\n".join(lines)


def _layout(nodes: Sequence[Mapping[str, Any]]) -> dict[int, float]:
    """Tidy top-down layout (a simplified Reingold-Tilford) in units of the minimum node spacing.

    Each subtree keeps its contour (leftmost and rightmost x per level); a child subtree is placed
    as far left as its contour allows next to its left siblings, and a parent sits centred over
    its first and last child. Same-level nodes are then never closer than 1 unit, and a tree
    stays much narrower than one column per leaf.
    """
    kids: dict[int, list[int]] = {n["id"]: [] for n in nodes}
    for n in nodes:
        if n["parent"] is not None:
            kids[n["parent"]].append(n["id"])
    root = next(n["id"] for n in nodes if n["parent"] is None)
    offset: dict[int, float] = {root: 0.0}  # x relative to the parent
    contour: dict[int, list[tuple[float, float]]] = {}
    stack: list[tuple[int, bool]] = [(root, False)]
    while stack:  # iterative post-order: deep traces must not hit the recursion limit
        nid, done = stack.pop()
        if not kids[nid]:
            contour[nid] = [(0.0, 0.0)]
        elif not done:
            stack.append((nid, True))
            stack.extend((c, False) for c in kids[nid])
        else:
            merged: list[tuple[float, float]] = []
            pos: list[float] = []
            for c in kids[nid]:
                cc = contour.pop(c)
                shift = max((merged[d][1] - cc[d][0] + 1.0 for d in range(min(len(merged), len(cc)))), default=0.0)
                pos.append(shift)
                for d, (lo, hi) in enumerate(cc):
                    if d < len(merged):
                        merged[d] = (min(merged[d][0], lo + shift), max(merged[d][1], hi + shift))
                    else:
                        merged.append((lo + shift, hi + shift))
            mid = (pos[0] + pos[-1]) / 2
            for c, x in zip(kids[nid], pos):
                offset[c] = x - mid
            contour[nid] = [(0.0, 0.0)] + [(lo - mid, hi - mid) for lo, hi in merged]
    xs: dict[int, float] = {root: 0.0}
    todo = [root]
    while todo:
        nid = todo.pop()
        for c in kids[nid]:
            xs[c] = xs[nid] + offset[c]
            todo.append(c)
    left = min(xs.values())
    return {nid: x - left for nid, x in xs.items()}


LABEL_CHARS = 18


def _label_height(n: Mapping[str, Any]) -> int:
    return 12 * len(_wrap(n["action"], LABEL_CHARS, 2)) + 5 if n.get("action") else 0


def _node_svg(n: Mapping[str, Any], x: float, y: float, r: int, roomy: bool, on_path: bool) -> str:
    """One node as a <g> translated to its place: shape, id, wrapped action label, tooltip."""
    status = _status(n)
    fill = {"accepted": GREEN, "rejected": RED, "neutral": GREY}[status]
    flags = [status] + [name for name, on in (("root", n["parent"] is None), ("on-path", on_path),
                                               ("solved", bool(n.get("solved")))) if on]
    classes = "nd " + " ".join(flags)
    stroke = f'stroke="{PATH_BLUE}" stroke-width="3.5"' if on_path else 'stroke="#fff" stroke-width="1.5"'
    g = [f"<title>{_esc(_tooltip(n))}</title>"]
    if n.get("solved"):
        g.append(f'<circle r="{r + 5}" fill="none" stroke="{GOLD}" stroke-width="3"/>')
        g.append(f'<text class="star" x="{r + 5}" y="{-r + 1}" fill="{GOLD}">★</text>')
    if n.get("terminal"):  # terminal states are squares, so dead ends stand out from open leaves
        g.append(f'<rect class="sh" x="{-r}" y="{-r}" width="{2 * r}" height="{2 * r}" rx="3" fill="{fill}" {stroke}/>')
    else:
        g.append(f'<circle class="sh" r="{r}" fill="{fill}" {stroke}/>')
    if n.get("invalid"):
        g.append('<text class="id" y="4.5" font-size="13">!</text>')
    elif roomy:
        g.append(f'<text class="id" y="3.5">{n["id"]}</text>')
    if roomy and n.get("action"):
        cls = "lb rej" if status == "rejected" else "lb path" if on_path else "lb"
        g += [f'<text class="{cls}" y="{r + 14 + 12 * k}">{_esc(line)}</text>'
              for k, line in enumerate(_wrap(n["action"], LABEL_CHARS, 2))]
    return f'<g class="{classes}" data-id="{n["id"]}" transform="translate({x:.1f},{y:.1f})">' + "".join(g) + "</g>"


def _svg(trace: Mapping[str, Any]) -> str:
    nodes = trace["nodes"]
    by_id = {n["id"]: n for n in nodes}
    roomy = len(nodes) <= 80  # small trees get labels; big ones stay compact and scroll sideways
    dx, dy, r = (106, 90, 13) if roomy else (24, 64, 8)
    xs = _layout(nodes)
    left, top = 58 + dx / 2, 24 + r
    max_depth = max(n["depth"] for n in nodes)
    width = left + max(xs.values()) * dx + dx / 2 + 8
    height = top + max_depth * dy + (48 if roomy else 24)
    on_path = set(trace["path"])
    path_edges = set(zip(trace["path"], trace["path"][1:]))

    def pos(nid: int) -> tuple[float, float]:
        return left + xs[nid] * dx, top + by_id[nid]["depth"] * dy

    out = [f'<svg class="t" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           'role="img" aria-label="search tree">']
    out += [f'<text class="dp" x="8" y="{top + d * dy + 4:.1f}">depth {d}</text>' for d in range(max_depth + 1)]
    normal, highlighted = [], []
    for n in nodes:
        if n["parent"] is None:
            continue
        (x1, y1), (x2, y2) = pos(n["parent"]), pos(n["id"])
        y1 += r + (_label_height(by_id[n["parent"]]) if roomy else 0)  # leave from under the label
        ym = (y1 + y2) / 2
        d = f"M{x1:.1f},{y1:.1f} C{x1:.1f},{ym:.1f} {x2:.1f},{ym:.1f} {x2:.1f},{y2 - r:.1f}"
        if (n["parent"], n["id"]) in path_edges:
            highlighted.append(f'<path class="e path" d="{d}"/>')
        else:
            normal.append(f'<path class="e{" rej" if _status(n) == "rejected" else ""}" d="{d}"/>')
    out += normal + highlighted
    for n in nodes:
        x, y = pos(n["id"])
        out.append(_node_svg(n, x, y, r, roomy, n["id"] in on_path))
    out.append("</svg>")
    return "\n".join(out)


def _legend() -> str:
    def swatch(fill: str, stroke: str = "#fff", sw: float = 1.5, shape: str = "c") -> str:
        paint = f'fill="{fill}" stroke="{stroke}" stroke-width="{sw}"'
        body = (f'<rect x="2" y="2" width="14" height="14" rx="2" {paint}/>' if shape == "r"
                else f'<circle cx="9" cy="9" r="7" {paint}/>')
        return f'<svg width="18" height="18">{body}</svg>'

    items = [
        (swatch(GREEN), "accepted candidate"), (swatch(RED), "rejected candidate (never expanded)"),
        (swatch(GREY), "root / not evaluated"), (swatch("#fff", PATH_BLUE, 3), "returned path"),
        ('<svg width="18" height="18"><circle cx="9" cy="9" r="7" fill="none" stroke="' + GOLD
         + '" stroke-width="3"/></svg>', "solved"),
        (swatch(GREY, shape="r"), "terminal state"),
        ('<svg width="18" height="18"><circle cx="9" cy="9" r="7" fill="' + GREY + '"/><text x="9" y="13" '
         'font-size="11" font-weight="700" fill="#fff" text-anchor="middle">!</text></svg>', "invalid action"),
    ]
    return '<div class="legend">' + "".join(f"<span>{s}{_esc(t)}</span>" for s, t in items) + \
        "<span>hover a node for its decision record</span></div>"


def render_html(trace: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline SVG, CSS and JS; opens offline) showing the tree."""
    t = validate_trace(dict(trace))
    nodes = t["nodes"]
    statuses = [_status(n) for n in nodes]
    badge = '<span class="badge ok">solved</span>' if t["solved"] else '<span class="badge no">not solved</span>'
    meta = [("task", t["task"]), ("strategy", t["strategy"]), ("evaluator", t["evaluator"]),
            ("path", " → ".join(str(i) for i in t["path"]))]
    params = ", ".join(f"{k}={_fmt(v) if not isinstance(v, (dict, list)) else json.dumps(v)}"
                       for k, v in t["params"].items())
    if params:
        meta.append(("params", params))
    usage = t["usage"]
    labels = {"generator_calls": "generator calls", "prompt_tokens": "prompt tokens",
              "generated_tokens": "generated tokens", "srm_calls": "SRM calls", "cache_hits": "cache hits",
              "wall_s": "wall seconds"}
    cards = [(labels.get(k, k.replace("_", " ")), _fmt(v)) for k, v in
             sorted(usage.items(), key=lambda kv: (list(labels).index(kv[0]) if kv[0] in labels else 99, kv[0]))]
    cards += [("nodes", _fmt(len(nodes))), ("accepted", _fmt(statuses.count("accepted"))),
              ("rejected", _fmt(statuses.count("rejected"))), ("max depth", _fmt(max(n["depth"] for n in nodes)))]
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc('trace: ' + t['task'] + ' · ' + t['strategy'] + '/' + t['evaluator'])}</title>",
        f"<style>{_CSS}</style></head><body><header>",
        f"<h1>srm-agent search trace {badge}</h1>",
        '<div class="row">' + "".join(f'<span class="kv"><b>{_esc(k)}</b>{_esc(v)}</span>' for k, v in meta) + "</div>",
    ]
    boxes = [("problem", t["problem"], "box"), ("answer", "–" if t["answer"] is None else t["answer"], "box")]
    if t["failure"]:
        boxes.append(("failure", t["failure"], "box fail"))
    parts.append('<div class="boxes">' + "".join(f'<div class="{c}"><div class="k">{k}</div><pre>{_esc(v)}</pre></div>'
                                                 for k, v, c in boxes) + "</div>")
    parts.append('<div class="cards">' + "".join(
        f'<div class="card"><div class="v">{_esc(v)}</div><div class="k">{_esc(k)}</div></div>' for k, v in cards)
        + "</div>")
    parts += [_legend(), "</header>", f'<main class="tree">{_svg(t)}</main>', '<div id="tip"></div>',
              f"<script>{_JS}</script>", "</body></html>"]
    return "\n".join(parts) + "\n"


# ---------------------------------------------------------------------------------------------
# CLI


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m srm_agent.trace", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    view = sub.add_parser("view", help="render a trace JSON as one self-contained HTML page",
                          description="Validate TRACE and write an offline HTML page drawing its search tree.")
    view.add_argument("trace", metavar="TRACE", help="trace JSON file (format version 1)")
    view.add_argument("-o", "--output", default=None, metavar="HTML",
                      help="where to write the page (default: TRACE with the suffix .html)")
    view.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output) if args.output else Path(args.trace).with_suffix(".html")

    def view() -> None:
        _atomic_write_text(out, render_html(load_trace(args.trace)))
        print(out)

    return run_command(view, debug=args.debug, usage_errors=(InputError,))


if __name__ == "__main__":
    sys.exit(main())
