"""The offline trace viewer: one self-contained HTML page (inline SVG, CSS and JS; nothing fetched).

Traces get opened offline and attached to reports, so the page carries everything it needs. The
style and script live beside this module (``viewer.css``, ``viewer.js``) and are inlined at render
time. Every piece of text from a trace (model output included) is HTML-escaped, and the per-node
data the side panel shows is embedded as JSON that cannot close its ``<script>`` element.
"""

from __future__ import annotations

import html
import json
from collections.abc import Mapping, Sequence
from importlib import resources
from typing import Any

from srm_agent.trace.schema import validate_trace

# Node colours; the browser test looks for GREEN and RED in a screenshot.
GREEN, RED, GREY = "#2f9e44", "#e03131", "#adb5bd"
PATH_BLUE, GOLD = "#1864ab", "#f59f00"

LABEL_CHARS, LABEL_LINES = 20, 3  # node labels in small trees; the side panel shows the full text
ROOMY_NODES = 80  # trees up to this size get labels; bigger ones stay compact and scroll sideways

USAGE_LABELS = {"generator_calls": "generator calls", "prompt_tokens": "prompt tokens",
                "generated_tokens": "generated tokens", "srm_calls": "SRM calls", "srm_scored": "SRM scored",
                "cache_hits": "cache hits", "expansions": "expansions", "wall_s": "wall seconds"}
DECISION_LABELS = {"sr": "SR", "rc": "RC"}


def _asset(name: str) -> str:
    return resources.files("srm_agent.trace").joinpath(name).read_text(encoding="utf-8")


def _esc(x: Any) -> str:
    return html.escape(str(x), quote=True)


def _script_json(data: Any) -> str:
    """JSON safe inside a <script> element: no '<', '>' or '&' can end it or open a comment."""
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026") \
        .replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def _fmt(x: Any) -> str:
    """Compact figures; nulls show as a dash, objects and lists as JSON."""
    if x is None:
        return "–"
    if isinstance(x, bool):
        return "yes" if x else "no"
    if isinstance(x, int):
        return f"{x:,}"
    if isinstance(x, float):
        return f"{x:.4g}" if abs(x) < 1e5 else f"{x:.3e}"
    if isinstance(x, (dict, list)):
        return json.dumps(x, ensure_ascii=False)
    return str(x)


def _label(key: str, labels: Mapping[str, str]) -> str:
    return labels.get(key, key.replace("_", " "))


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
    if node["parent"] is None or not d:
        return "neutral"
    return "accepted" if d["accepted"] else "rejected"


def _head(node: Mapping[str, Any]) -> str:
    return f"node {node['id']} · depth {node['depth']} · " + ("root" if node["parent"] is None else _status(node))


def _flags(node: Mapping[str, Any]) -> list[str]:
    return [k.replace("_", " ") for k in ("expanded", "terminal", "solved", "on_path") if node.get(k)] + \
        (["invalid"] if node.get("invalid") else [])


def _decision_rows(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The evaluator's record as it was given, figures formatted (its ``text`` is the action itself)."""
    d = node.get("decision") or {}
    return [(DECISION_LABELS.get(k, k), _fmt(v)) for k, v in d.items() if k not in ("text", "accepted")]


def _search_rows(node: Mapping[str, Any]) -> list[tuple[str, str]]:
    rows = [(key, _fmt(node[key])) for key in ("reward", "visits", "value")
            if node.get(key) is not None and not (key == "visits" and node[key] == 0)]
    if node.get("invalid"):
        rows.append(("invalid", node["invalid"]))
    return rows


def _tooltip(node: Mapping[str, Any]) -> str:
    """The node's <title>: a plain-text summary for browsers without JavaScript."""
    lines = [_head(node), f"action: {_clip(node.get('action') or '(root)', 400)}"]
    lines += [f"{k}: {_clip(v, 200)}" for k, v in _decision_rows(node) + _search_rows(node)]
    flags = _flags(node)
    if flags:
        lines.append(f"flags: {', '.join(flags)}")
    if node.get("state"):
        lines.append(f"state: {_clip(node['state'], 600, one_line=False)}")
    return "\n".join(lines)


def _panel_data(node: Mapping[str, Any]) -> dict[str, Any]:
    """What the side panel shows for one node, in full (no clipping)."""
    return {"head": _head(node), "action": node.get("action") or "(root)", "flags": ", ".join(_flags(node)),
            "decision": _decision_rows(node), "search": _search_rows(node), "state": node.get("state") or ""}


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


def _label_lines(n: Mapping[str, Any]) -> list[str]:
    return _wrap(n["action"], LABEL_CHARS, LABEL_LINES) if n.get("action") else []


def _node_svg(n: Mapping[str, Any], x: float, y: float, r: int, roomy: bool, on_path: bool) -> str:
    """One node as a <g> translated to its place: shape, id, wrapped action label, fallback tooltip."""
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
    if roomy:
        cls = "lb rej" if status == "rejected" else "lb path" if on_path else "lb"
        g += [f'<text class="{cls}" y="{r + 14 + 12 * k}">{_esc(line)}</text>'
              for k, line in enumerate(_label_lines(n))]
    return f'<g class="{classes}" data-id="{n["id"]}" transform="translate({x:.1f},{y:.1f})">' + "".join(g) + "</g>"


def _svg(trace: Mapping[str, Any]) -> str:
    nodes = trace["nodes"]
    roomy = len(nodes) <= ROOMY_NODES
    dx, dy, r = (126, 100, 13) if roomy else (24, 64, 8)
    xs = _layout(nodes)
    left, top = 58 + dx / 2, 24 + r
    max_depth = max(n["depth"] for n in nodes)
    width = left + max(xs.values()) * dx + dx / 2 + 8
    height = top + max_depth * dy + (12 * LABEL_LINES + 24 if roomy else 24)
    on_path = set(trace["path"])
    path_edges = set(zip(trace["path"], trace["path"][1:]))

    def pos(nid: int) -> tuple[float, float]:
        return left + xs[nid] * dx, top + nodes[nid]["depth"] * dy

    out = [f'<svg class="t" width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}" '
           'role="img" aria-label="search tree">']
    out += [f'<text class="dp" x="8" y="{top + d * dy + 4:.1f}">depth {d}</text>' for d in range(max_depth + 1)]
    normal, highlighted = [], []
    for n in nodes[1:]:
        (x1, y1), (x2, y2) = pos(n["parent"]), pos(n["id"])
        y1 += r + (12 * len(_label_lines(nodes[n["parent"]])) + 5 if roomy else 0)  # leave from under the label
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
    return '<div class="legend">' + "".join(f"<span>{s}{_esc(t)}</span>" for s, t in items) + "</div>"


def _usage(usage: Mapping[str, Any], nodes: Sequence[Mapping[str, Any]]) -> str:
    """Flat figures as cards, per-role figures (``"proposal": {"calls": …}``) as one table with totals."""
    order = list(USAGE_LABELS)
    flat = sorted(((k, v) for k, v in usage.items() if not isinstance(v, dict)),
                  key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))
    statuses = [_status(n) for n in nodes]
    cards = [(_label(k, USAGE_LABELS), _fmt(v)) for k, v in flat] + [
        ("nodes", _fmt(len(nodes))), ("accepted", _fmt(statuses.count("accepted"))),
        ("rejected", _fmt(statuses.count("rejected"))), ("max depth", _fmt(max(n["depth"] for n in nodes)))]
    out = ['<div class="cards">']
    out += [f'<div class="card"><div class="v">{_esc(v)}</div><div class="k">{_esc(k)}</div></div>' for k, v in cards]
    roles = {k: v for k, v in usage.items() if isinstance(v, dict)}
    if roles:
        columns = list(dict.fromkeys(c for figures in roles.values() for c in figures))
        rows = [("", role, [figures.get(c) for c in columns]) for role, figures in roles.items()]
        if len(roles) > 1:
            rows.append((' class="total"', "total",
                         [sum(figures.get(c) or 0 for figures in roles.values()) for c in columns]))
        out.append('<table class="usage"><caption>usage by role</caption><tr><th>role</th>'
                   + "".join(f"<th>{_esc(_label(c, USAGE_LABELS))}</th>" for c in columns) + "</tr>")
        out += [f"<tr{cls}><td>{_esc(role)}</td>" + "".join(f"<td>{_esc(_fmt(v))}</td>" for v in values) + "</tr>"
                for cls, role, values in rows]
        out.append("</table>")
    out.append("</div>")
    return "".join(out)


def _panel(trace: Mapping[str, Any]) -> str:
    """The side panel's default view: the returned path with every action in full."""
    nodes = trace["nodes"]
    steps = [nodes[i] for i in trace["path"][1:]]
    items = "".join(f'<li><span class="step" role="button" tabindex="0" data-id="{n["id"]}">'
                    f'{_esc(n["action"])}</span></li>' for n in steps) or "<li>(the root only: no action taken)</li>"
    return ('<aside id="panel"><div id="path-view"><div class="h">returned path</div>'
            f"<ol>{items}</ol>"
            '<div class="hint">Hover a node for its full action, decision record and state; click to keep it '
            "shown (Escape goes back).</div></div>"
            '<div id="node-view" hidden></div></aside>')


def render_html(trace: Mapping[str, Any]) -> str:
    """One self-contained HTML page (inline SVG, CSS and JS; opens offline) showing the search tree."""
    t = validate_trace(dict(trace))
    nodes = t["nodes"]
    badge = '<span class="badge ok">solved</span>' if t["solved"] else '<span class="badge no">not solved</span>'
    meta = [("task", t["task"]), ("strategy", t["strategy"]), ("evaluator", t["evaluator"]),
            ("path", " → ".join(str(i) for i in t["path"]))]
    if t["params"]:
        meta.append(("params", ", ".join(f"{k}={_fmt(v)}" for k, v in t["params"].items())))
    boxes = [("problem", t["problem"], "box"), ("answer", "–" if t["answer"] is None else t["answer"], "box")]
    if t["failure"]:
        boxes.append(("failure", t["failure"], "box fail"))
    parts = [
        "<!doctype html>", '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc('trace: ' + t['task'] + ' · ' + t['strategy'] + '/' + t['evaluator'])}</title>",
        f"<style>{_asset('viewer.css')}</style></head><body><header>",
        f"<h1>srm-agent search trace {badge}</h1>",
        '<div class="row">' + "".join(f'<span class="kv"><b>{_esc(k)}</b>{_esc(v)}</span>' for k, v in meta) + "</div>",
        '<div class="boxes">' + "".join(f'<div class="{c}"><div class="k">{k}</div><pre>{_esc(v)}</pre></div>'
                                        for k, v, c in boxes) + "</div>",
        _usage(t["usage"], nodes), _legend(), "</header>",
        f'<div class="split"><main class="tree">{_svg(t)}</main>{_panel(t)}</div>',
        f'<script type="application/json" id="trace-data">{_script_json({"nodes": [_panel_data(n) for n in nodes]})}'
        "</script>",
        f"<script>{_asset('viewer.js')}</script>", "</body></html>",
    ]
    return "\n".join(parts) + "\n"
