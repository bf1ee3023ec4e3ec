"""``python -m evals.run`` end to end with tiny models: every method, resume, the 3E outputs, bad input."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import torch

from evals.methods import METHODS, SearchSettings, search_kwargs
from evals.report import main as report_main
from evals.report import summarise, table
from evals.run import main
from tests.conftest import SHARED, make_tiny_lm


@pytest.fixture()
def tiny_models(tmp_path, tiny_lm_tokenizer, tiny_srm, monkeypatch) -> list[str]:
    """A tiny causal LM (long enough for a few-shot prompt) and a tiny SRM, saved as checkpoints.

    REDIS_URL is unset: a score cache shared with earlier runs would turn SRM calls into hits.
    """
    monkeypatch.delenv("REDIS_URL", raising=False)
    lm = tmp_path / "tiny-lm"
    make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=4096).save_pretrained(lm)
    tiny_lm_tokenizer.save_pretrained(lm)
    srm = tiny_srm.save_pretrained(tmp_path / "tiny-srm")
    return ["--generator", str(lm), "--srm", str(srm), "--device", "cpu"]


SMALL = ["--generate", "2", "--blocks", "3", "--k", "2", "--beam", "2", "--mcts-iters", "2",
         "--max-expansions", "6", "--prompts", "built-in"]


def without_wall_time(summary: dict) -> dict:
    return {m: {k: v for k, v in row.items() if k not in ("wall_s", "srm_seconds")}
            for m, row in summary["methods"].items()}


def test_every_method_runs_and_writes_the_3e_outputs(tmp_path, tiny_models, capsys):
    out = tmp_path / "run"
    code = main(["--bench", "blocksworld", "--methods", ",".join(METHODS), "--out", str(out), "--plot",
                 *SMALL, "--generate", "1", *tiny_models])
    assert code == 0, capsys.readouterr().err
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert len(records) == len(METHODS)
    assert {r["method"] for r in records} == set(METHODS)
    assert all(Path(r["trace"]).is_file() for r in records)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=Path(__file__).parent,
                          capture_output=True, text=True).stdout.strip()
    if head:  # a git checkout: every record names the commit whose code ran it
        assert {r["code"].removesuffix("+changes") for r in records} == {head}
    summary = json.loads((out / "summary.json").read_text())
    assert summary["code"] == sorted({r["code"] for r in records if r["code"]})
    assert summary["bench"] == "blocksworld" and summary["config"]["k"] == 2
    assert summary["provenance"] == {"prompt_pool": "built-in", "demonstrations": 2}
    for method, row in summary["methods"].items():
        assert {"n", "solved", "accuracy", "prompt_tokens", "generated_tokens", "generator_calls", "srm_calls",
                "cache_hits", "wall_s", "by_role", "srm_seconds"} <= set(row)
        assert row["n"] == 1 and row["generator_calls"] > 0
        assert (row["srm_calls"] > 0) == method.startswith("srm") and row["cache_hits"] == 0
        judged = row["by_role"]["evaluation"]["calls"]
        assert (judged > 0) == METHODS[method].evaluator.startswith("self"), (method, row["by_role"])
        if METHODS[method].twin:
            assert row["twin"] == METHODS[method].twin and row["tokens_vs_twin"] > 0
    assert (out / "accuracy_vs_tokens.png").read_bytes()[:4] == b"\x89PNG"
    printed = capsys.readouterr().out
    assert "tok/twin" in printed and all(m in printed for m in METHODS)


def test_resume_after_an_interruption_gives_the_same_summary(tmp_path, tiny_models):
    args = ["--bench", "blocksworld", "--methods", "cot,srm-dfs,tot-bfs", *SMALL, *tiny_models]
    whole = tmp_path / "whole"
    assert main([*args, "--out", str(whole)]) == 0
    cut = tmp_path / "cut"
    cut.mkdir()
    lines = (whole / "results.jsonl").read_text().splitlines(keepends=True)
    (cut / "results.jsonl").write_text("".join(lines[:2]) + lines[2][: len(lines[2]) // 2])  # killed mid-write
    assert main([*args, "--out", str(cut), "--resume"]) == 0
    records = [json.loads(line) for line in (cut / "results.jsonl").read_text().splitlines()]
    assert len(records) == len(lines)  # the torn record redone once, nothing duplicated
    assert len({(r["id"], r["method"]) for r in records}) == len(lines)
    first, second = (json.loads((d / "summary.json").read_text()) for d in (whole, cut))
    assert without_wall_time(first) == without_wall_time(second)


@pytest.mark.skipif(not (SHARED / "data" / "gsm8k").is_dir(), reason="../shared (GSM8K sample) is absent")
def test_gsm8k_runs_on_two_real_problems(tmp_path, tiny_models):
    out = tmp_path / "gsm"
    code = main(["--bench", "gsm8k", "--data", str(SHARED / "data" / "gsm8k" / "test.jsonl"), "--limit", "2",
                 "--methods", "cot,srm-bfs", "--k", "2", "--depth", "2", "--max-expansions", "3",
                 "--out", str(out), *tiny_models])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [row["n"] for row in summary["methods"].values()] == [2, 2]
    assert summary["methods"]["cot"]["generated_tokens"] > 0


def test_each_srm_search_is_reported_against_its_own_twin():
    def record(method, prompt, generated, solved):
        role = {"calls": 1, "prompt_tokens": prompt, "generated_tokens": generated}
        return {"id": "p", "method": method, "solved": solved,
                "usage": {"prompt_tokens": prompt, "generated_tokens": generated, "generator_calls": 1,
                          "proposal": role, "evaluation": {}, "world_model": {}}}

    records = [record("cot", 10, 0, False), record("tot-bfs", 100, 100, True), record("srm-bfs", 15, 5, True),
               record("rap-mcts", 1000, 0, False), record("srm-mcts", 50, 0, True)]
    summary = summarise("blocksworld", {}, records, ["cot", "tot-bfs", "srm-bfs", "rap-mcts", "srm-mcts"])
    rows = summary["methods"]
    assert rows["srm-bfs"]["tokens_vs_twin"] == 0.1 and rows["srm-bfs"]["twin_accuracy"] == 1.0
    assert rows["srm-mcts"]["tokens_vs_twin"] == 0.05 and rows["srm-mcts"]["twin"] == "rap-mcts"
    assert "twin" not in rows["tot-bfs"] and "twin" not in rows["cot"]
    line = next(x for x in table(summary).splitlines() if x.startswith("srm-mcts"))
    assert "rap-mcts" in line and "0.050" in line


def exit_code(argv: list[str]) -> int:
    """What the command line would exit with (argparse exits itself on bad arguments)."""
    try:
        return main(argv)
    except SystemExit as exc:
        return int(exc.code)


@pytest.mark.parametrize(
    ("argv", "code", "message"),
    [
        (["--bench", "chess"], 2, "invalid choice"),
        (["--methods", "cot,magic"], 2, "unknown method"),
        (["--limit", "0"], 2, "must be >= 1"),
        (["--steps", "4-2"], 2, "plan lengths must satisfy"),
        (["--data", "/nonexistent/split.json"], 2, "/nonexistent/split.json"),
        (["--srm", "/nonexistent/srm", "--methods", "srm-bfs"], 1, "/nonexistent/srm"),
    ],
)
def test_bad_input_gets_one_clear_message(tmp_path, capsys, argv, code, message):
    assert exit_code([*argv, "--out", str(tmp_path / "x"), "--generate", "1", "--blocks", "3"]) == code
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_an_existing_run_is_never_overwritten(tmp_path, tiny_models, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "results.jsonl").write_text('{"id": "keep-me"}\n')
    assert main(["--out", str(out), *SMALL, *tiny_models]) == 2
    assert "--resume" in capsys.readouterr().err
    assert (out / "results.jsonl").read_text() == '{"id": "keep-me"}\n'


def test_resume_refuses_different_settings(tmp_path, tiny_models, capsys):
    out = tmp_path / "run"
    assert main(["--methods", "cot", "--out", str(out), *SMALL, *tiny_models]) == 0
    assert main(["--methods", "cot", "--out", str(out), "--resume", *SMALL, "--k", "3", *tiny_models]) == 2
    err = capsys.readouterr().err
    assert "different settings" in err and err.rstrip().endswith(": k")


def test_srm_searches_name_their_srm_and_a_resume_with_another_refuses(tmp_path, tiny_models, tiny_srm, capsys):
    from srm_agent import SpeculativeRewardModel

    def srm_version(path: str) -> str:
        return SpeculativeRewardModel.from_pretrained(path, device="cpu").fingerprint

    out, srm = tmp_path / "run", Path(tiny_models[tiny_models.index("--srm") + 1])
    args = ["--methods", "cot,srm-bfs", "--out", str(out), *SMALL, *tiny_models]
    assert main(args) == 0
    records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert {r["method"]: r.get("srm") for r in records} == {"cot": None, "srm-bfs": srm_version(str(srm))}
    assert json.loads((out / "summary.json").read_text())["srm"] == [srm_version(str(srm))]
    with torch.no_grad():
        tiny_srm.model.classifier.bias += 1.0  # the same folder now holds another SRM
    tiny_srm.save_pretrained(srm)
    assert srm_version(str(srm)) != records[1]["srm"]
    (out / "results.jsonl").write_text(json.dumps(records[0]) + "\n" + json.dumps(records[1]) + "\n")
    assert main([*args, "--resume", "--limit", "2"]) == 2
    assert f"scored by SRM {records[1]['srm']}" in capsys.readouterr().err
    again = tmp_path / "again"  # the second problem, with the other SRM: a join keeps one SRM per method
    assert main(["--methods", "srm-bfs,cot", "--shard", "1/2", "--out", str(again), *SMALL, *tiny_models]) == 0
    assert report_main(["merge", str(again), str(out), "--out", str(tmp_path / "mixed")]) == 2
    assert "srm-bfs was scored by different SRMs" in capsys.readouterr().err
    assert report_main(["merge", str(out), str(again), "--methods", "cot", "--out", str(tmp_path / "cot")]) == 0
    assert list(json.loads((tmp_path / "cot" / "summary.json").read_text())["methods"]) == ["cot"]
    assert report_main(["merge", str(again), "--methods", "cot,srm-bfs", "--out", str(tmp_path / "order")]) == 0
    assert list(json.loads((tmp_path / "order" / "summary.json").read_text())["methods"]) == ["cot", "srm-bfs"]


def test_twins_differ_only_in_the_evaluator():
    from srm_agent.rule import RULE_DEFAULTS

    for proposals in ("enumerate", "sample"):
        settings = SearchSettings(proposals=proposals)
        for method, m in METHODS.items():
            if m.twin is None:
                continue
            mine, theirs = search_kwargs(method, settings, 4), search_kwargs(m.twin, settings, 4)
            differ = {k for k in {*mine, *theirs} if mine.get(k) != theirs.get(k)}
            # the rule's parameters exist only where the SRM evaluates
            assert differ <= {"evaluator", "evaluator_options", *RULE_DEFAULTS}, (method, differ)


def test_concurrent_and_sharded_runs_give_the_sequential_results(tmp_path, tiny_models, capsys):
    args = ["--bench", "blocksworld", "--methods", "cot,srm-bfs", *SMALL, "--generate", "3", *tiny_models]

    def per_search(out):
        records = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
        return {(r["id"], r["method"]): (r["solved"], r["answer"],
                                         {k: v for k, v in r["usage"].items() if k not in ("wall_s", "srm_seconds")})
                for r in records}

    assert main([*args, "--out", str(tmp_path / "seq")]) == 0
    assert main([*args, "--out", str(tmp_path / "conc"), "--concurrency", "3"]) == 0
    assert per_search(tmp_path / "conc") == per_search(tmp_path / "seq")
    for i in range(2):
        assert main([*args, "--out", str(tmp_path / f"shard{i}"), "--shard", f"{i}/2"]) == 0
    assert len(per_search(tmp_path / "shard0")) == 4 and len(per_search(tmp_path / "shard1")) == 2
    assert report_main(["merge", str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out",
                        str(tmp_path / "merged")]) == 0
    assert per_search(tmp_path / "merged") == per_search(tmp_path / "seq")
    merged = json.loads((tmp_path / "merged" / "summary.json").read_text())
    sequential = json.loads((tmp_path / "seq" / "summary.json").read_text())
    assert without_wall_time(merged) == without_wall_time(sequential)
    assert report_main(["merge", str(tmp_path / "seq"), str(tmp_path / "nowhere"), "--out", str(tmp_path / "m2")]) == 2
    assert "no config.json" in capsys.readouterr().err

    # a table again from a run's summary, as text and as the README's Markdown
    assert report_main(["show", str(tmp_path / "merged")]) == 0
    assert capsys.readouterr().out.strip() == table(merged)
    assert report_main(["show", str(tmp_path / "merged"), "--markdown"]) == 0
    rows = capsys.readouterr().out.strip().splitlines()
    assert rows[0].startswith("| method | solved |") and len(rows) == 2 + len(merged["methods"])
    assert rows[2].startswith("| `cot` |")
    assert rows[3].startswith(f"| `srm-bfs` | {merged['methods']['srm-bfs']['solved']}/3 |")
    assert report_main(["show", str(tmp_path / "nowhere")]) == 2
    assert "no summary.json" in capsys.readouterr().err

    # runs stopped at different points: only the problems every method finished make the table
    lines = (tmp_path / "shard0" / "results.jsonl").read_text().splitlines(keepends=True)
    cut = next(i for i, line in enumerate(lines) if json.loads(line)["method"] == "srm-bfs")
    (tmp_path / "shard0" / "results.jsonl").write_text("".join(lines[:cut] + lines[cut + 1:]))
    assert report_main(["merge", str(tmp_path / "shard0"), str(tmp_path / "shard1"), "--out",
                        str(tmp_path / "complete"), "--complete-only"]) == 0
    assert "2 problems finished by every method; 1 left out" in capsys.readouterr().out
    complete = json.loads((tmp_path / "complete" / "summary.json").read_text())
    assert {m: r["n"] for m, r in complete["methods"].items()} == {"cot": 2, "srm-bfs": 2}


def test_a_torn_last_record_leaves_no_orphan_trace_when_resumed(tmp_path, tiny_models):
    args = ["--bench", "blocksworld", "--methods", "cot,srm-dfs", *SMALL, *tiny_models, "--out", str(tmp_path / "r")]
    assert main(args) == 0
    results = tmp_path / "r" / "results.jsonl"
    lines = results.read_text().splitlines(keepends=True)
    results.write_text("".join(lines[:-1]) + lines[-1][: len(lines[-1]) // 2])  # killed while writing the last one
    assert main([*args, "--resume"]) == 0
    records = [json.loads(line) for line in results.read_text().splitlines()]
    traces = sorted((tmp_path / "r" / "traces").iterdir())
    assert len(records) == len(lines) and sorted(Path(r["trace"]) for r in records) == traces


def test_ablations_run_each_variant_and_tabulate_rejections(tmp_path, tiny_models, capsys):
    from evals.ablate import main as ablate_main
    from evals.ablate import variants

    out = tmp_path / "ablate"
    srm = tiny_models[tiny_models.index("--srm") + 1]
    assert ablate_main(["--out", str(out), *SMALL, "--generate", "1", *tiny_models,
                        "--compare-srm", f"same SRM again={srm}"]) == 0
    rows = json.loads((out / "ablation.json").read_text())
    assert set(rows) == set(variants([("same SRM again", srm)])) and len(rows) == 11
    assert rows["same SRM again"] == rows["alpha=0.5"]  # the base row, run again in a folder of its own
    assert all(0 <= r["rejection_rate"] <= 1 and 0 <= r["fallback_rate"] <= 1 and r["n"] == 1 for r in rows.values())
    printed = capsys.readouterr().out
    assert "consistency off" in printed and (out / "ablation.png").read_bytes()[:4] == b"\x89PNG"
    config = json.loads((out / "noise-sigma2" / "config.json").read_text())
    assert config["srm_noise"] == 2.0 and config["consistency"] == "on"


def test_noisy_srm_is_deterministic_per_pair():
    from evals.methods import NoisySRM

    class Zero:
        fingerprint = "zero"

        def score(self, state, actions):
            return [0.0] * len(actions)

    noisy = NoisySRM(Zero(), 2.0, seed=1)
    first = noisy.score("s", ["a", "b", "c"])
    assert noisy.score("s", ["c", "a"]) == [first[2], first[0]] and len(set(first)) == 3
    assert NoisySRM(Zero(), 0.0).score("s", ["a"]) == [0.0] and noisy.fingerprint != "zero"
