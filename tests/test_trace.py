"""Search traces: validation, atomic writing, the offline HTML viewer, its CLI and a real browser."""

from __future__ import annotations

import html
import json
import os
import re
import stat
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from srm_agent import speculative_verify
from srm_agent.errors import InputError
from srm_agent.trace import GREEN, RED, Trace, load_trace, parse_trace, render_html, validate_trace, write_trace
from srm_agent.trace.__main__ import main

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
XSS = "<script>alert(1)</script>"

# parent id -> its candidates: (action, planned verdict); the decision records come from the real rule.
SMALL_TREE: dict[int, list[tuple[str, bool]]] = {
    0: [("unstack the red block from on top of the blue block", True), ("pick up the yellow block", True),
        ("pick up the blue block", False), ("stack the red block on the sky", False)],
    1: [("put down the red block", True), ("stack the red block on top of the yellow block", True),
        ("put down the blue block", False), ("pick up the red block", False)],
    2: [("stack the yellow block on top of the red block", True), ("put down the yellow block", True),
        ("unstack the red block", False)],
    5: [("pick up the blue block", True), ("pick up the red block", False), ("pick up the yellow block", True)],
    6: [("pick up the blue block", True), ("unstack the red block from on top of the yellow block", False)],
    9: [("pick up the blue block", True), ("put down the red block", False)],
    12: [("stack the blue block on top of the yellow block", True), ("stack the blue block on top of the red block",
                                                                     True), ("put down the blue block", False)],
    14: [("stack the yellow block on top of the blue block", False)],
    15: [("stack the blue block on top of the red block", False), ("put down the blue block", True)],
}
SMALL_PATH = [0, 1, 5, 12, 20]
SMALL_SOLVED = 20
SMALL_INVALID = 17
PROBLEM = ("blocksworld #12\ninitial: the red block is on top of the blue block, the blue block and the yellow block "
           "are on the table, the hand is empty\ngoal: the blue block is on top of the red block")


def _decisions(planned: list[bool], rng: np.random.Generator) -> list[dict[str, Any]]:
    """Real decision records whose accept flags match the plan (threshold mode, clear SRM logits)."""
    cands = [{"text": f"c{i}", "logprob": float(rng.uniform(-9, -5)), "num_tokens": int(rng.integers(6, 12))}
             for i in range(len(planned))]
    logits = [float(rng.uniform(2.0, 3.5)) if ok else float(rng.uniform(-4.0, -2.5)) for ok in planned]
    verdict = speculative_verify(cands, logits, mode="threshold", threshold=0.8 if len(planned) > 1 else 0.0)
    records = verdict.to_dict()["decisions"]
    for rec, ok in zip(records, planned):
        rec["accepted"] = ok  # one-candidate groups: keep the plan (the rule would always accept)
        rec["cached"] = bool(rng.random() < 0.3)
    return records


def _state(depth: int, action: str | None) -> str:
    return (f"step {depth}: after '{action}'\nthe hand is empty" if action else
            "the red block is on top of the blue block\nthe blue block and the yellow block are on the table\n"
            "the hand is empty")


def small_trace() -> dict[str, Any]:
    """A 25-node Blocksworld beam search with the SRM: accepted and rejected candidates, one solution."""
    rng = np.random.default_rng(7)
    nodes = [{"id": 0, "parent": None, "action": None, "depth": 0, "state": _state(0, None), "decision": None,
              "expanded": True, "terminal": False, "solved": False}]
    for parent, cands in SMALL_TREE.items():
        records = _decisions([ok for _, ok in cands], rng)
        for (action, _), rec in zip(cands, records):
            rec["text"] = action
            depth = nodes[parent]["depth"] + 1
            nodes.append({"id": len(nodes), "parent": parent, "action": action, "depth": depth,
                          "state": _state(depth, action) if rec["accepted"] else "", "decision": rec,
                          "expanded": False, "terminal": False, "solved": False})
    for n in nodes:
        n["expanded"] = n["id"] in SMALL_TREE
    nodes[SMALL_SOLVED].update(terminal=True, solved=True)
    nodes[SMALL_INVALID].update(terminal=True, invalid="the hand is already holding the yellow block")
    return {"version": 2, "task": "blocksworld", "problem": PROBLEM,
            "strategy": "beam", "evaluator": "srm", "params": {"k": 4, "max_depth": 5, "alpha": 0.5, "beam_width": 2},
            "nodes": nodes, "path": list(SMALL_PATH), "solved": True, "answer": "\n".join(
                nodes[i]["action"] for i in SMALL_PATH[1:]), "failure": None,
            "usage": {"proposal": {"calls": 9, "prompt_tokens": 4210, "generated_tokens": 388},
                      "evaluation": {"calls": 8, "prompt_tokens": 1302, "generated_tokens": 0},
                      "srm_calls": 8, "cache_hits": 6, "wall_s": 12.4}}


def big_trace(target: int = 300, k: int = 4, max_depth: int = 6) -> dict[str, Any]:
    """A breadth-first search grown with the stochastic rule until ``target`` nodes exist."""
    rng = np.random.default_rng(1)
    nodes: list[dict[str, Any]] = [{"id": 0, "parent": None, "action": None, "depth": 0, "state": "start",
                                    "decision": None, "expanded": False, "terminal": False, "solved": False,
                                    "visits": 3, "value": 0.5}]
    frontier = [0]
    while frontier and len(nodes) < target:
        parent = nodes[frontier.pop(0)]
        if parent["depth"] >= max_depth:
            continue
        parent["expanded"] = True
        cands = [{"text": f"move {parent['id']}.{j}", "logprob": float(rng.uniform(-12, -3)), "num_tokens": 6}
                 for j in range(min(k, target - len(nodes)))]
        verdict = speculative_verify(cands, rng.normal(0, 2, len(cands)).tolist(), rng=rng)
        for rec in verdict.to_dict()["decisions"]:
            node = {"id": len(nodes), "parent": parent["id"], "action": rec["text"], "depth": parent["depth"] + 1,
                    "state": f"state after {rec['text']}", "decision": rec, "expanded": False, "terminal": False,
                    "solved": False, "visits": int(rng.integers(0, 5)), "value": float(rng.random())}
            nodes.append(node)
            if rec["accepted"]:
                frontier.append(node["id"])
    goal = max((n for n in nodes if n["decision"] and n["decision"]["accepted"] and not n["expanded"]),
               key=lambda n: n["depth"])
    goal.update(terminal=True, solved=True)
    path = [goal["id"]]
    while nodes[path[-1]]["parent"] is not None:
        path.append(nodes[path[-1]]["parent"])
    return {"version": 2, "task": "game24", "problem": "4 9 10 13", "strategy": "bfs", "evaluator": "srm",
            "params": {"k": k, "max_depth": max_depth}, "nodes": nodes, "path": path[::-1], "solved": True,
            "answer": "(10 - 4) * (13 - 9) = 24", "failure": None,
            "usage": {"proposal": {"calls": 80, "prompt_tokens": 51234, "generated_tokens": 9034}, "srm_calls": 80,
                      "cache_hits": 17, "wall_s": 301.25}}


def xss_trace() -> dict[str, Any]:
    trace = small_trace()
    trace["nodes"][3]["action"] = XSS
    trace["nodes"][3]["decision"]["text"] = XSS
    trace["problem"] = f'problem with "quotes" & {XSS}'
    trace["answer"] = XSS
    return trace


def _node_ids(page: str, cls: str = "") -> set[int]:
    return {int(m.group(2)) for m in re.finditer(r'<g class="([^"]*)" data-id="(\d+)"', page) if cls in m.group(1)}


def assert_self_contained(page: str) -> None:
    assert not re.search(r"""(?:src|href)\s*=\s*["']?\s*(?:https?:)?//""", page, re.I)
    assert "http://" not in page and "https://" not in page
    assert not re.search(r"<script[^>]*\bsrc\b", page, re.I)
    assert "<link" not in page.lower()
    assert "@import" not in page and "url(" not in page


# --- validation ---------------------------------------------------------------------------------


def test_sample_traces_are_valid_and_optional_keys_are_filled():
    for trace in (small_trace(), big_trace()):
        checked = validate_trace(trace)
        assert [n["decision"] for n in checked["nodes"]] == [n["decision"] for n in trace["nodes"]]
        assert [n["on_path"] for n in checked["nodes"]] == [n["id"] in trace["path"] for n in trace["nodes"]]
        assert isinstance(parse_trace(trace), Trace)
    assert len(small_trace()["nodes"]) == 25 and len(big_trace()["nodes"]) == 300
    bare = {k: v for k, v in small_trace().items() if k not in ("params", "answer", "failure", "usage")}
    filled = validate_trace(bare)
    assert filled["params"] == {} and filled["usage"] == {} and filled["answer"] is None
    assert filled["nodes"][1]["reward"] is None and filled["nodes"][1]["visits"] == 0
    assert "intuition" not in filled["nodes"][1]["decision"]  # a record keeps the fields its evaluator gave


def _set(path: str, value: Any):
    def mutate(trace: dict[str, Any]) -> None:
        *head, last = path.split(".")
        target: Any = trace
        for part in head:
            target = target[int(part)] if part.isdigit() else target[part]
        target[int(last) if last.isdigit() else last] = value
    return mutate


@pytest.mark.parametrize("mutate, message", [
    (_set("nodes.3.parent", 77), "nodes[3].parent: unknown node 77"),
    (_set("nodes.3.parent", 9), "nodes[3].parent: node 9 comes after node 3"),
    (_set("nodes.3.parent", "1"), "nodes[3].parent: must be an integer, got '1'"),
    (_set("version", 3), "version: unsupported trace version 3 (this reader knows 1, 2)"),
    (lambda t: t.pop("version"), "version: missing"),
    (lambda t: t.pop("problem"), "problem: missing"),
    (_set("problem", {"init": "x", "gold": ["y"]}), "problem: must be a string, got dict"),
    (_set("nodes.4.id", 2), "nodes[4].id: must be 4 (ids are 0..n-1 in order), got 2"),
    (_set("nodes.2.parent", None), "nodes[2].parent: only node 0 is the root"),
    (_set("nodes.0.parent", 1), "nodes[0].parent: the first node is the root"),
    (_set("nodes.5.depth", 3), "nodes[5].depth: is 3 but its parent 1 has depth 1"),
    (_set("nodes.5.parent", 3), "nodes[5].parent: node 3 is a rejected candidate"),
    (_set("nodes.3.expanded", True), "nodes[3].expanded: a rejected candidate is never expanded"),
    (_set("nodes.6.decision.sr", "big"), "nodes[6].decision.sr: must be a finite number, got 'big'"),
    (_set("nodes.6.decision.sr", 1e400), "nodes[6].decision.sr: must be a finite number, got inf"),
    (_set("nodes.6.decision.accepted", "yes"), "nodes[6].decision.accepted: must be true or false, got 'yes'"),
    (lambda t: t["nodes"][6]["decision"].pop("accepted"), "nodes[6].decision.accepted: missing"),
    (_set("nodes.6.decision.num_tokens", True), "nodes[6].decision.num_tokens: must be an integer, got True"),
    (_set("nodes.6.action", None), "nodes[6].action: a candidate's action must be a string"),
    (_set("nodes.6.visits", -1), "nodes[6].visits: must be greater than or equal to 0, got -1"),
    (_set("nodes.6.on_path", True), "nodes[6].on_path: is true but path does not contain node 6"),
    (_set("nodes", []), "nodes: must have at least 1 item"),
    (_set("path", [0, 1, 6, 12]), "path[3]: node 12's parent is 5, not 6"),
    (_set("path", [1, 5]), "path[0]: must start at the root"),
    (_set("path", [0, 99]), "path[1]: unknown node 99"),
    (_set("strategy", "astar"), "strategy: must be one of beam, bfs, dfs, mcts, got 'astar'"),
    (_set("evaluator", "none"), "evaluator: must be one of "),
    (_set("usage.srm_calls", -1), "usage.srm_calls: must be a finite number >= 0"),
    (_set("usage.proposal.calls", "3"), "usage.proposal.calls: must be a finite number >= 0, got '3'"),
    (_set("solved", "yes"), "solved: must be true or false"),
    (_set("nodes", "many"), "nodes: must be a list, got 'many'"),
    (lambda t: t.clear(), "version: missing"),
])
def test_validation_names_the_bad_field(mutate, message):
    trace = small_trace()
    mutate(trace)
    with pytest.raises(InputError) as info:
        validate_trace(trace)
    assert str(info.value).startswith(message), str(info.value)


def test_path_must_follow_parent_links():
    trace = small_trace()
    trace["path"] = [0, 2, 5]
    with pytest.raises(InputError, match=r"^path\[2\]: node 5's parent is 1, not 2$"):
        validate_trace(trace)


def test_strategies_and_evaluators_are_the_registered_ones():
    from srm_agent.search.registry import evaluator_names, register_strategy, strategy_names

    trace = small_trace()
    for name in strategy_names():
        assert validate_trace({**trace, "strategy": name})["strategy"] == name
    for name in evaluator_names():
        assert validate_trace({**trace, "evaluator": name})["evaluator"] == name
    with pytest.raises(InputError, match="^strategy: must be one of"):
        validate_trace({**trace, "strategy": "greedy_trace_test"})
    register_strategy("greedy_trace_test", object)  # a user's own strategy is known once registered
    assert validate_trace({**trace, "strategy": "greedy_trace_test"})["strategy"] == "greedy_trace_test"


def test_self_eval_records_are_shown_as_given():
    trace = small_trace()
    trace["evaluator"] = "self_eval"
    for n in trace["nodes"][1:]:
        accepted = n["decision"]["accepted"]
        n["decision"] = {"accepted": accepted, "intuition": -1.25, "self_eval": 0.75 if accepted else 0.125,
                         "reward": 0.5}
        n["reward"] = 0.5
    page = render_html(validate_trace(trace))
    tip = re.search(r'data-id="3"[^>]*><title>(.*?)</title>', page, re.S).group(1)
    assert "self_eval: 0.125" in tip and "intuition: -1.25" in tip and "reward: 0.5" in tip
    assert "SR: " not in tip and "p_accept" not in tip
    assert _node_ids(page, "nd rejected") == {n["id"] for n in trace["nodes"][1:] if not n["decision"]["accepted"]}


def test_nodes_without_a_decision_are_neutral():
    trace = small_trace()
    trace["evaluator"] = "prior"
    for n in trace["nodes"][1:]:
        n["decision"] = None
    assert set(range(25)) == _node_ids(render_html(trace), "neutral")


def test_version_1_files_are_read_as_version_2():
    trace = small_trace()
    trace.update(version=1, evaluator="none", usage={"generator_calls": 9, "prompt_tokens": 4210})
    for n in trace["nodes"][1:]:
        n["decision"] = None
    trace["nodes"][SMALL_INVALID]["invalid"] = True
    trace["nodes"][4]["state"] = None
    upgraded = validate_trace(trace)
    assert upgraded["version"] == 2 and upgraded["evaluator"] == "prior"
    assert upgraded["nodes"][SMALL_INVALID]["invalid"] == "invalid action" and upgraded["nodes"][4]["state"] == ""
    assert upgraded["usage"] == {"generator_calls": 9, "prompt_tokens": 4210}


# --- writing and loading ------------------------------------------------------------------------


def test_write_is_atomic_and_round_trips(tmp_path):
    trace = xss_trace()
    trace["nodes"][1]["value"] = np.float64(0.25)  # search code leaves numpy scalars around
    trace["usage"]["srm_calls"] = np.int64(8)
    old_umask = os.umask(0o077)
    try:
        out = write_trace(trace, tmp_path / "runs" / "t.json")
    finally:
        os.umask(old_umask)
    assert out == tmp_path / "runs" / "t.json"
    assert os.listdir(out.parent) == ["t.json"] and stat.S_IMODE(out.stat().st_mode) == 0o644
    loaded = load_trace(out)
    assert loaded["nodes"][3]["action"] == XSS and loaded["usage"]["srm_calls"] == 8
    assert loaded == validate_trace(loaded)  # what is written is what the reader returns
    assert json.loads(out.read_text(encoding="utf-8"))["nodes"][1]["value"] == 0.25
    assert write_trace(parse_trace(loaded), tmp_path / "again.json").read_text() == out.read_text()


def test_failed_writes_leave_no_temp_files_and_keep_the_old_file(tmp_path, monkeypatch):
    out = write_trace(small_trace(), tmp_path / "t.json")
    before = out.read_bytes()
    bad = small_trace()
    bad["nodes"][3]["parent"] = 77
    with pytest.raises(InputError, match=r"nodes\[3\]\.parent: unknown node 77"):
        write_trace(bad, out)
    nan = small_trace()
    nan["nodes"][2]["decision"]["score"] = float("nan")
    with pytest.raises(InputError, match=r"nodes\[2\]\.decision\.score"):
        write_trace(nan, out)
    with pytest.raises(InputError, match="not JSON serialisable"):
        write_trace({**small_trace(), "params": {"f": object()}}, out)

    def boom(src, dst):
        raise OSError("disk full")
    monkeypatch.setattr(os, "replace", boom)
    with pytest.raises(OSError, match="disk full"):
        write_trace(small_trace(), out)
    assert os.listdir(tmp_path) == ["t.json"] and out.read_bytes() == before


# --- the page -----------------------------------------------------------------------------------


def _panel_nodes(page: str) -> list[dict[str, Any]]:
    blob = re.search(r'<script type="application/json" id="trace-data">(.*?)</script>', page, re.S).group(1)
    return json.loads(blob)["nodes"]


def test_page_is_self_contained_and_draws_every_node():
    trace = small_trace()
    page = render_html(trace)
    assert page.startswith("<!doctype html>") and page.count("<svg class=\"t\"") == 1
    assert_self_contained(page)
    assert _node_ids(page) == set(range(25))
    assert _node_ids(page, "on-path") == set(SMALL_PATH)
    assert _node_ids(page, "solved") == {SMALL_SOLVED}
    accepted = {n["id"] for n in trace["nodes"] if n["decision"] and n["decision"]["accepted"]}
    assert _node_ids(page, "nd accepted") == accepted and _node_ids(page, "nd rejected") == set(range(1, 25)) - accepted
    assert _node_ids(page, "neutral") == {0}
    assert f'fill="{GREEN}"' in page and f'fill="{RED}"' in page
    for word in ("blocksworld", "beam", "srm", "SRM calls", "cache hits", "12.4",
                 "accepted candidate", "rejected candidate", "returned path"):
        assert word in page
    tip = re.search(r'data-id="12"[^>]*><title>(.*?)</title>', page, re.S).group(1)
    for key in ("action: pick up the blue block", "depth 3", "SR: ", "RC: ", "score: ", "p_accept: ", "p_llm: ",
                "q_srm: ", "srm_logit: ", "cached: "):
        assert key in tip
    assert "invalid: the hand is already holding" in page


def test_problem_box_shows_the_summary_as_text():
    page = render_html(small_trace())
    box = re.search(r'<div class="k">problem</div><pre>(.*?)</pre>', page, re.S).group(1)
    assert box == html.escape(PROBLEM)  # the readable summary, line breaks kept, nothing added


def test_usage_per_role_is_a_table_with_totals():
    page = render_html(small_trace())
    table = re.search(r'<table class="usage">(.*?)</table>', page, re.S).group(1)
    cells = [re.findall(r"<t[dh]>(.*?)</t[dh]>", row) for row in re.findall(r"<tr[^>]*>(.*?)</tr>", table)]
    assert cells == [["role", "calls", "prompt tokens", "generated tokens"], ["proposal", "9", "4,210", "388"],
                     ["evaluation", "8", "1,302", "0"], ["total", "17", "5,512", "388"]]
    assert "<table" not in render_html({**small_trace(), "usage": {"srm_calls": 8}}).split("</header>")[0]


def test_full_action_text_is_on_the_page_without_hovering():
    trace = small_trace()
    long = ("stack the yellow block on top of the red block, then check that the blue block is still clear "
            "and on the table")
    trace["nodes"][5]["action"] = trace["nodes"][5]["decision"]["text"] = long
    page = render_html(trace)
    panel = re.search(r'<div id="path-view">(.*?)</div><div id="node-view"', page, re.S).group(1)
    steps = re.findall(r'<span class="step" role="button" tabindex="0" data-id="(\d+)">(.*?)</span>', panel)
    assert [int(i) for i, _ in steps] == SMALL_PATH[1:]
    assert steps[1][1] == html.escape(long)  # in full, in the panel shown when the page opens
    labels = re.search(r'data-id="5"[^>]*>.*?</g>', page, re.S).group(0)
    assert "stack the yellow" in labels and "block on top of the" in labels  # wrapped, not cut at 18 chars
    nodes = _panel_nodes(page)
    assert len(nodes) == 25 and nodes[5]["action"] == long and nodes[5]["head"] == "node 5 · depth 2 · accepted"
    assert ["SR", _fmt_sr(trace, 5)] in nodes[5]["decision"] and nodes[5]["state"].startswith("step 2")


def _fmt_sr(trace: dict[str, Any], i: int) -> str:
    return f"{trace['nodes'][i]['decision']['sr']:.4g}"


def test_llm_text_is_escaped():
    page = render_html(xss_trace())
    assert XSS not in page and "<script>alert" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&quot;quotes&quot; &amp;" in page
    assert page.count("<script>") == 1  # the viewer's own inline script only
    assert page.count("</script>") == 2  # that one and the JSON data block, which the payload cannot close
    assert _panel_nodes(page)[3]["action"] == XSS  # the panel gets the text back as text


def test_hundreds_of_nodes_stay_readable():
    trace = big_trace()
    page = render_html(trace)
    assert_self_contained(page)
    assert _node_ids(page) == set(range(300))
    assert _node_ids(page, "on-path") == set(trace["path"])
    places = {int(i): (float(x), float(y)) for i, x, y in
              re.findall(r'data-id="(\d+)" transform="translate\(([\d.]+),([\d.]+)\)"', page)}
    assert len(places) == 300
    rows: dict[float, list[float]] = {}
    for x, y in places.values():
        rows.setdefault(y, []).append(x)
    assert len(rows) == 1 + max(n["depth"] for n in trace["nodes"])
    gaps = [b - a for xs in rows.values() for a, b in zip(sorted(xs), sorted(xs)[1:])]
    assert min(gaps) >= 23.9  # no overlaps on any level; a wide tree scrolls sideways
    width = int(re.search(r'<svg class="t" width="(\d+)"', page).group(1))
    assert width >= max(x for x, _ in places.values())
    assert "visits: " in page and "value: " in page
    assert len(_panel_nodes(page)) == 300  # no labels at this size: the panel has every action


# --- CLI ----------------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "srm_agent.trace", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120, env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_cli_renders_next_to_the_trace_by_default(tmp_path):
    src = write_trace(small_trace(), tmp_path / "run.json")
    done = _cli("view", str(src), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str(tmp_path / "run.html")
    assert _node_ids((tmp_path / "run.html").read_text(encoding="utf-8")) == set(range(25))
    assert stat.S_IMODE((tmp_path / "run.html").stat().st_mode) == 0o644
    assert main(["view", str(src), "-o", str(tmp_path / "out" / "tree.html")]) == 0
    assert (tmp_path / "out" / "tree.html").exists()
    assert sorted(os.listdir(tmp_path)) == ["out", "run.html", "run.json"]


def test_cli_help():
    done = _cli("view", "--help", cwd=ROOT)
    assert done.returncode == 0 and "-o HTML" in done.stdout and "TRACE" in done.stdout
    top = _cli("--help", cwd=ROOT)
    assert top.returncode == 0 and "view" in top.stdout


@pytest.mark.parametrize("case, expected", [
    ("missing", "missing.json: no such file"),
    ("not-json", "is not valid JSON"),
    ("deep-json", "is not valid JSON"),
    ("unknown-parent", "nodes[3].parent: unknown node 77"),
    ("version-9", "version: unsupported trace version 9"),
])
def test_cli_bad_input_is_one_line_with_exit_2(tmp_path, case, expected):
    src = tmp_path / f"{case}.json"
    if case == "not-json":
        src.write_text("{\"version\": 2,", encoding="utf-8")
    elif case == "deep-json":
        src.write_text("[" * 200_000 + "]" * 200_000, encoding="utf-8")
    elif case == "unknown-parent":
        trace = small_trace()
        trace["nodes"][3]["parent"] = 77
        src.write_text(json.dumps(trace), encoding="utf-8")
    elif case == "version-9":
        src.write_text(json.dumps({**small_trace(), "version": 9}), encoding="utf-8")
    done = _cli("view", str(src), cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.startswith("error: ") and expected in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and "Traceback" not in done.stderr
    assert not list(tmp_path.glob("*.html"))


def test_cli_unwritable_output_exits_1(tmp_path):
    src = write_trace(small_trace(), tmp_path / "run.json")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    done = _cli("view", str(src), "-o", str(blocker / "tree.html"), cwd=tmp_path)
    assert done.returncode == 1 and done.stderr.startswith("error: ") and len(done.stderr.splitlines()) == 1


# --- a real browser -----------------------------------------------------------------------------


def decode_png(data: bytes) -> tuple[int, int, list[bytes]]:
    """Decode an 8-bit RGB/RGBA, non-interlaced PNG into rows of RGB bytes (zlib + struct only)."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, [], 0
    while pos < len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
            bpp = 3 if colour == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * bpp
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        kind, line = raw[start], bytearray(raw[start + 1:start + 1 + stride])
        if kind == 1:
            for i in range(bpp, stride):
                line[i] = (line[i] + line[i - bpp]) & 255
        elif kind == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif kind == 3:
            for i in range(stride):
                line[i] = (line[i] + ((line[i - bpp] if i >= bpp else 0) + prev[i]) // 2) & 255
        elif kind == 4:
            for i in range(stride):
                a, b, c = (line[i - bpp] if i >= bpp else 0), prev[i], (prev[i - bpp] if i >= bpp else 0)
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        prev = line
        rows.append(bytes(line) if bpp == 3 else bytes(b for i, b in enumerate(line) if i % 4 != 3))
    return width, height, rows


def screenshot(html_path: Path, png_path: Path, profile: Path, size: str = "1400,900") -> None:
    """Render a page with headless Chromium (no network, throw-away profile)."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", "--force-color-profile=srgb", "--hide-scrollbars",
           f"--user-data-dir={profile}", f"--window-size={size}", f"--screenshot={png_path}",
           html_path.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and png_path.exists(), f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"


def dump_dom(html_path: Path, profile: Path) -> str:
    """The page's DOM after its scripts ran, from headless Chromium."""
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", f"--user-data-dir={profile}",
           "--dump-dom", html_path.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and "<body" in done.stdout, \
        f"chromium failed ({done.returncode}): {done.stderr[-2000:]}"
    return done.stdout


def _rgb(hex_colour: str) -> tuple[int, int, int]:
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))  # type: ignore[return-value]


@pytest.mark.slow
def test_page_renders_in_headless_chromium(tmp_path):
    if os.environ.get("SRM_SKIP_BROWSER") == "1":
        pytest.skip("SRM_SKIP_BROWSER=1: the headless-Chromium test is switched off")
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(f"{CHROMIUM} is missing: run the tests with `make test`, which installs it "
                    "(tests/ensure_chromium.sh), or set SRM_SKIP_BROWSER=1 to skip this test")
    page = tmp_path / "tree.html"
    page.write_text(render_html(xss_trace()), encoding="utf-8")
    png = tmp_path / "tree.png"
    screenshot(page, png, tmp_path / "profile")
    width, height, rows = decode_png(png.read_bytes())
    assert (width, height) == (1400, 900)
    colours: set[tuple[int, int, int]] = set()
    for row in rows[::2]:
        colours.update(struct.iter_unpack("3B", row))
    assert len(colours) > 20, f"the screenshot looks blank ({len(colours)} colours)"

    def near(target: tuple[int, int, int]) -> bool:
        return any(all(abs(a - b) <= 3 for a, b in zip(c, target)) for c in colours)
    assert near(_rgb(GREEN)), "no accepted (green) node in the screenshot"
    assert near(_rgb(RED)), "no rejected (red) node in the screenshot"

    # The viewer script ran over every node, and a click shows the node's full text, as text, in the panel.
    clicked = tmp_path / "clicked.html"
    clicked.write_text(page.read_text(encoding="utf-8").replace("</body>", (
        "<script>document.querySelector('svg.t .nd[data-id=\"3\"]')"
        ".dispatchEvent(new MouseEvent('click', {bubbles: true}));</script></body>")), encoding="utf-8")
    dom = dump_dom(clicked, tmp_path / "profile")
    assert not re.search(r'data-id="\d+"[^>]*><title>', dom), "the viewer script did not run over every node"
    assert dom.count('tabindex="0"') == 25 + len(SMALL_PATH) - 1
    view = re.search(r'<div id="node-view">(.*?)</div></aside>', dom, re.S)
    assert view, "clicking a node did not open it in the side panel"
    assert "node 3 · depth 1 · rejected" in view.group(1)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in view.group(1) and "<script>alert" not in dom
    assert re.search(r'<div id="path-view" hidden', dom)
