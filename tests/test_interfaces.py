"""The SRM as a LangGraph node, a LangChain tool and a CLI, on good and bad input."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path
from typing import Any, TypedDict

import pytest

from srm_agent import InputError, make_srm_node, make_srm_tool
from srm_agent.cli import main
from srm_agent.schemas import (MAX_ACTION_CHARS, MAX_NUM_TOKENS, MAX_SEED, MAX_STATE_CHARS, MIN_TEMPERATURE,
                               ProposeRequest, ScoreRequest)

ROOT = Path(__file__).resolve().parents[1]
STATE = "Initial: the red block is on the blue block. Goal: the blue block is on the red block."
CANDIDATES = [
    {"text": "unstack the red block from on top of the blue block", "logprob": -4.0, "num_tokens": 10},
    {"text": "pick up the blue block", "logprob": -3.0, "num_tokens": 5},
    {"text": "put down the red block", "logprob": -6.5, "num_tokens": 5},
]
REQUEST = {"state": STATE, "candidates": CANDIDATES}


class SearchState(TypedDict, total=False):
    state: str
    candidates: list[dict[str, Any]]
    verdict: dict[str, Any]


def one_node_graph(node):
    from langgraph.graph import END, START, StateGraph

    builder = StateGraph(SearchState)
    builder.add_node("srm", node)
    builder.add_edge(START, "srm")
    builder.add_edge("srm", END)
    return builder.compile()


# -- node ---------------------------------------------------------------------------------------


def test_node_in_a_graph_writes_the_verdict_and_streams_it(tiny_srm):
    graph = one_node_graph(make_srm_node(tiny_srm, seed=0))
    result = graph.invoke({"state": STATE, "candidates": CANDIDATES})
    verdict = result["verdict"]
    assert len(verdict["decisions"]) == 3 and verdict["order"]
    assert verdict["decisions"][0]["srm_logit"] == pytest.approx(tiny_srm.score(STATE, [CANDIDATES[0]["text"]])[0],
                                                                abs=1e-5)
    events = list(graph.stream({"state": STATE, "candidates": CANDIDATES}, stream_mode="custom"))
    assert len(events) == 1 and events[0]["event"] == "srm_verdict"
    assert events[0]["order"] == verdict["order"]  # same seed, same expansion, same verdict


def test_node_seed_makes_stochastic_verdicts_reproducible(tiny_srm):
    def accepted(seed):
        node = make_srm_node(tiny_srm, seed=seed)
        return tuple(d["accepted"] for d in node({"state": STATE, "candidates": CANDIDATES})["verdict"]["decisions"])

    assert accepted(3) == accepted(3)
    assert len({accepted(s) for s in range(30)}) > 1


@pytest.mark.parametrize("seed", [-1, MAX_SEED + 1, 1.5, True])
def test_node_names_a_seed_numpy_cannot_take(tiny_srm, seed):
    with pytest.raises(InputError) as info:
        make_srm_node(tiny_srm, seed=seed)({"state": STATE, "candidates": CANDIDATES})
    assert info.value.field == "seed"


def test_node_applies_rule_overrides(tiny_srm):
    node = make_srm_node(tiny_srm, mode="threshold", threshold=0.0, alpha=1.0)
    verdict = node({"state": STATE, "candidates": CANDIDATES})["verdict"]
    assert all(d["accepted"] for d in verdict["decisions"])
    assert verdict["params"]["alpha"] == 1.0


def test_node_reports_missing_state_keys_and_bad_rules(tiny_srm):
    with pytest.raises(KeyError, match="candidates"):
        make_srm_node(tiny_srm)({"state": STATE})
    with pytest.raises(InputError, match="alpha"):
        make_srm_node(tiny_srm, alpha=2.0)
    with pytest.raises(TypeError, match="unknown rule parameter"):
        make_srm_node(tiny_srm, temperature=0.8)
    with pytest.raises(InputError) as info:
        make_srm_node(tiny_srm)({"state": STATE, "candidates": [{"text": "a", "logprob": float("nan"),
                                                                  "num_tokens": 1}]})
    assert info.value.field == "candidates[0].logprob"


# -- tool ---------------------------------------------------------------------------------------


def test_tool_schema_and_verdict(tiny_srm):
    tool = make_srm_tool(tiny_srm)
    assert tool.name == "speculative_reward"
    assert {"state", "candidates", "alpha"} <= set(tool.args)
    out = json.loads(tool.invoke({**REQUEST, "alpha": 0.25, "seed": 1}))
    assert out["params"]["alpha"] == 0.25
    assert [d["text"] for d in out["decisions"]] == [c["text"] for c in CANDIDATES]
    assert out == json.loads(tool.invoke({**REQUEST, "alpha": 0.25, "seed": 1}))


@pytest.mark.parametrize(
    ("request_", "field"),
    [
        ({"state": STATE, "candidates": []}, "candidates"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "logprob": float("nan")}]}, "candidates[0].logprob"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "logprob": float("-inf")}]}, "candidates[0].logprob"),
        ({"state": STATE, "candidates": [{"text": "x", "num_tokens": 2}]}, "candidates[0].logprob"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "logprob": "likely"}]}, "candidates[0].logprob"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "num_tokens": "3"}]}, "candidates[0].num_tokens"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "text": ""}]}, "candidates[0].text"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "text": "x" * (MAX_ACTION_CHARS + 1)}]},
         "candidates[0].text"),
        ({"state": "s" * (MAX_STATE_CHARS + 1), "candidates": CANDIDATES}, "state"),
        ({"state": "   ", "candidates": CANDIDATES}, "state"),
        ({"state": STATE, "candidates": CANDIDATES, "alpha": 3}, "alpha"),
        ({"state": STATE, "candidates": CANDIDATES, "seed": -1}, "seed"),
        ({"state": STATE, "candidates": CANDIDATES, "seed": MAX_SEED + 1}, "seed"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "num_tokens": 10**400}]}, "candidates[0].num_tokens"),
        ({"state": STATE, "candidates": [{**CANDIDATES[0], "num_tokens": MAX_NUM_TOKENS + 1}]},
         "candidates[0].num_tokens"),
        ({"state": STATE, "candidates": CANDIDATES, "tau": 0.0}, "tau"),
    ],
)
def test_tool_names_the_bad_field(tiny_srm, request_, field):
    message = make_srm_tool(tiny_srm).invoke(request_)
    assert message.startswith("invalid speculative_reward input:")
    assert f" {field}:" in message


class ExtremeScorer:
    """An SRM stand-in whose logits sit at the edges of what the score cache accepts."""

    fingerprint = "extreme"

    def score(self, state: str, actions: list[str]) -> list[float]:
        from srm_agent.cache import MAX_PLAUSIBLE_LOGIT

        edges = [MAX_PLAUSIBLE_LOGIT, -MAX_PLAUSIBLE_LOGIT, 0.0, 5e-324]
        return [edges[i % len(edges)] for i in range(len(actions))]


TINY, HUGE = 5e-324, 1.7e308  # the smallest positive float and (nearly) the largest


@pytest.mark.parametrize("tau", [TINY, 1e-320, 1.0, HUGE])
@pytest.mark.parametrize("threshold", [0.0, TINY, HUGE])
@pytest.mark.parametrize("mode", ["stochastic", "threshold"])
@pytest.mark.parametrize("ratio", ["srm_over_llm", "llm_over_srm"])
def test_every_request_that_validates_gives_finite_json(tau, threshold, mode, ratio):
    tool = make_srm_tool(ExtremeScorer())
    edges = [(0.0, 1), (-TINY, MAX_NUM_TOKENS), (-HUGE, 1), (-1.0, MAX_NUM_TOKENS), (-HUGE, MAX_NUM_TOKENS)]
    candidates = [{"text": f"action {i}", "logprob": lp, "num_tokens": n} for i, (lp, n) in enumerate(edges)]
    for alpha, seed in ((0.0, 0), (1.0, MAX_SEED)):
        out = tool.invoke({"state": STATE, "candidates": candidates, "alpha": alpha, "tau": tau,
                           "threshold": threshold, "mode": mode, "ratio": ratio, "seed": seed})
        verdict = json.loads(out, parse_constant=lambda name: pytest.fail(f"{name} in the verdict: {out[:200]}"))
        assert verdict["order"], out[:200]


@pytest.mark.parametrize(("field", "value"), [("seed", -1), ("seed", MAX_SEED + 1), ("temperature", 1e-320),
                                              ("temperature", MIN_TEMPERATURE / 2), ("temperature", 101.0),
                                              ("stop", ["x"] * 17), ("stop", ["x" * 257])])
def test_propose_request_bounds(field, value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match=field):
        ProposeRequest(prompt="p", **{field: value})
    ProposeRequest(prompt="p", seed=MAX_SEED, temperature=0.0)
    ProposeRequest(prompt="p", seed=0, temperature=MIN_TEMPERATURE)


# -- CLI ------------------------------------------------------------------------------------------


def run_cli(monkeypatch, capsys, argv: list[str], stdin: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    capsys.readouterr()  # drop what the fixtures printed
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_scores_a_request(monkeypatch, capsys, tiny_srm_dir):
    code, out, err = run_cli(monkeypatch, capsys, ["score", "--srm", str(tiny_srm_dir)], json.dumps(REQUEST))
    assert code == 0, err
    verdict = json.loads(out)
    assert len(verdict["decisions"]) == 3 and isinstance(verdict["fallback"], bool)


def test_cli_table_output(monkeypatch, capsys, tiny_srm_dir):
    code, out, _ = run_cli(monkeypatch, capsys, ["score", "--srm", str(tiny_srm_dir), "--table"],
                           json.dumps(REQUEST))
    assert code == 0 and out.splitlines()[0].split()[:3] == ["rank", "ok", "p_llm"]
    assert len(out.splitlines()) >= 4
    legend = {line.split()[0] for line in out.split("\n\n", 1)[1].splitlines() if line.strip()}
    assert {"ok", "p_llm", "q_srm", "SR", "RC", "score"} <= legend
    assert "Blocksworld" not in out  # said only of the shipped SRM+, and this is another one


def test_cli_table_escapes_model_text(monkeypatch, capsys, tiny_srm_dir):
    hostile = "\x1b[2J\x1b[31mpick up\rthe\nred\u202eblock"
    request = {"state": STATE, "candidates": [{"text": hostile, "logprob": -1.0, "num_tokens": 3}]}
    code, out, _ = run_cli(monkeypatch, capsys, ["score", "--srm", str(tiny_srm_dir), "--table"],
                           json.dumps(request))
    row = out.splitlines()[1]
    assert code == 0 and not any(ch in out for ch in "\x1b\r\u202e")
    assert "\\x1b[2J\\x1b[31mpick up\\rthe\\nred\\u202eblock" in row


@pytest.mark.parametrize(
    ("stdin", "expected"),
    [
        ("", "stdin is empty"),
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        (json.dumps({"state": STATE, "candidates": []}), "candidates:"),
        ('{"state": "s", "candidates": [{"text": "a", "logprob": NaN, "num_tokens": 1}]}', "candidates[0].logprob:"),
        (json.dumps({"state": STATE, "candidates": [{"text": "a", "logprob": -1}]}), "candidates[0].num_tokens:"),
        (json.dumps({"state": STATE, "candidates": [{"text": "a", "logprob": "x", "num_tokens": 1}]}),
         "candidates[0].logprob:"),
        (json.dumps({"stat": STATE, "candidates": CANDIDATES}), "stat:"),
        (json.dumps({**REQUEST, "seed": -1}), "seed:"),
        (json.dumps({**REQUEST, "candidates": [{**CANDIDATES[0], "num_tokens": 10**400}]}),
         "candidates[0].num_tokens:"),
        ("[" * 1_000_000 + "]" * 1_000_000, "not valid JSON"),
        ('{"state": "s", "seed": ' + "9" * 5000 + "}", "not valid JSON"),
    ],
)
def test_cli_bad_requests_get_one_line(monkeypatch, capsys, tiny_srm_dir, stdin, expected):
    code, out, err = run_cli(monkeypatch, capsys, ["score", "--srm", str(tiny_srm_dir)], stdin)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err


def test_cli_names_a_path_that_is_not_a_checkpoint(monkeypatch, capsys, tmp_path):
    code, out, err = run_cli(monkeypatch, capsys, ["score", "--srm", str(tmp_path)], json.dumps(REQUEST))
    assert code == 1 and out == ""
    assert err.count("\n") == 1 and str(tmp_path) in err and "config.json" in err


def test_cli_shares_scores_through_redis(monkeypatch, capsys, tiny_srm_dir, redis_url, redis_namespace):
    argv = ["score", "--srm", str(tiny_srm_dir), "--redis-url", redis_url, "--namespace", redis_namespace]
    run_cli(monkeypatch, capsys, argv, json.dumps(REQUEST))
    code, out, _ = run_cli(monkeypatch, capsys, argv, json.dumps(REQUEST))
    assert code == 0 and all(d["cached"] for d in json.loads(out)["decisions"])


def test_cli_propose_output_is_a_valid_score_request(monkeypatch, capsys, tmp_path, tiny_generator):
    folder = save_tiny_lm(tiny_generator, tmp_path / "tiny-lm")
    ask = {"prompt": "the red block is on top of", "k": 3, "max_new_tokens": 6, "stop": [], "seed": 0}
    code, out, err = run_cli(monkeypatch, capsys, ["propose", "--generator", str(folder)], json.dumps(ask))
    assert code == 0, err
    request = ScoreRequest.model_validate_json(out)
    assert request.state == ask["prompt"] and 1 <= len(request.candidates) <= 3
    assert "prompt tokens" in err


@pytest.mark.parametrize(("option", "command"), [("--srm", "score"), ("--generator", "propose")])
@pytest.mark.parametrize("name", ["microsoft/deberta-v3-large", "PATH"])
def test_cli_offline_hub_id_says_what_to_pass_instead(monkeypatch, capsys, tmp_path, option, command, name):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path))
    stdin = json.dumps(REQUEST if command == "score" else {"prompt": "the red block"})
    code, out, err = run_cli(monkeypatch, capsys, [command, option, name], stdin)
    assert code == 1 and out == "" and err.count("\n") == 1
    assert err.startswith(f"error: {name}: ") and "local" in err and f"omit {option}" in err


def save_tiny_lm(generator, folder: Path) -> Path:
    generator.model.save_pretrained(folder)
    generator.tokenizer.save_pretrained(folder)
    return folder


SAMPLE_PROBLEM = ROOT / "srm_agent" / "samples" / "blocksworld_problem.json"


def test_cli_propose_task_scores_every_legal_action(monkeypatch, capsys, tmp_path, tiny_lm_tokenizer):
    from tests.conftest import make_tiny_lm

    from srm_agent.generators import TransformersGenerator
    from srm_tasks import get_spec

    long_lm = make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=2048)  # a few-shot prompt is long
    tiny_generator = TransformersGenerator(long_lm, tiny_lm_tokenizer, device="cpu")
    folder = save_tiny_lm(tiny_generator, tmp_path / "tiny-lm")
    sample = json.loads(SAMPLE_PROBLEM.read_text())
    argv = ["propose", "--task", "blocksworld", "--generator", str(folder)]
    code, out, err = run_cli(monkeypatch, capsys, argv, json.dumps(sample))
    assert code == 0, err
    request = ScoreRequest.model_validate_json(out)

    task = get_spec("blocksworld").make_task({})
    state = task.initial_state(sample["problem"])
    for step in sample["steps"]:
        state = task.step(state, step)
    assert request.state == task.describe(state)
    assert [c.text for c in request.candidates] == task.legal_actions(state)
    lead = "" if task.prompt(state)[-1:].isspace() else " "
    expected = tiny_generator.score_choices(task.prompt(state), [lead + a for a in task.legal_actions(state)])
    assert [c.logprob for c in request.candidates] == pytest.approx([c.logprob for c in expected], abs=1e-4)
    assert "prompt tokens" in err  # the call's usage


@pytest.mark.parametrize(("argv", "stdin", "expected"), [
    (["--task", "chess"], {"problem": {}}, "unknown task 'chess'"),
    (["--task", "blocksworld"], {"problem": {"init": []}}, "problem:"),
    (["--task", "blocksworld"], {"problem": {"init": ["(clear a)", "(handempty)", "(ontable a)"],
                                             "goal": ["(holding a)"]}, "steps": ["fly away"]}, "steps[0]:"),
    (["--task", "blocksworld"], {"init": [], "goal": []}, "problem:"),
])
def test_cli_propose_task_bad_input_is_one_line(monkeypatch, capsys, argv, stdin, expected):
    code, out, err = run_cli(monkeypatch, capsys, ["propose", *argv, "--generator", "/nonexistent"],
                             json.dumps(stdin))
    assert code == 2 and out == "" and err.count("\n") == 1 and expected in err, err


def test_cli_as_a_process_help_and_errors_without_tracebacks(tmp_path):
    def run(args, stdin=""):
        return subprocess.run([sys.executable, "-m", "srm_agent", *args], input=stdin, capture_output=True,
                              text=True, cwd=ROOT, timeout=120)

    for args in (["--help"], ["score", "--help"], ["propose", "--help"]):
        done = run(args)
        assert done.returncode == 0 and "usage:" in done.stdout
    done = run(["score", "--srm", str(tmp_path / "nope")], json.dumps(REQUEST))
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().count("\n") == 0 and "nope" in done.stderr


def test_the_node_serves_async_graphs(tiny_srm):
    import asyncio

    graph = one_node_graph(make_srm_node(tiny_srm, seed=0))
    request = {"state": STATE, "candidates": CANDIDATES}

    async def many():
        return await asyncio.gather(*(graph.ainvoke(request) for _ in range(3)))

    sync = graph.invoke(request)["verdict"]
    assert all(out["verdict"] == sync for out in asyncio.run(many()))
