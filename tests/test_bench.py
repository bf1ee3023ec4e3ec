"""The throughput benchmark's parts on tiny models: its inputs come from the domain, its reference is right.

The figures themselves are printed by ``python -m evals.throughput``; nothing here times anything.
"""

from __future__ import annotations

import subprocess
import sys
import re
from pathlib import Path

import pytest

from evals.bench.generator import MODES, bench_generator, naive_score_choices
from evals.bench.machine import Progress
from evals.bench.srm import bench_srm, padding_overhead
from evals.bench.texts import nearby_actions, plan_prompts, srm_pairs
from srm_tasks.blocksworld import BlocksworldTask, default_pool, parse_action

ROOT = Path(__file__).resolve().parents[1]
QUIET = Progress(0, enabled=False)
STACKS = "Stacks, top to bottom, each block with its goal: "


def test_srm_pairs_are_described_states_with_legal_actions():
    pairs, n_states = srm_pairs(24, seed=3)
    assert len(pairs) == 24 and 6 <= n_states <= 24
    assert pairs == srm_pairs(24, seed=3)[0] and pairs != srm_pairs(24, seed=4)[0]
    for state, action in pairs:
        assert state.startswith(STACKS)
        parse_action(action)  # raises on anything that is not a Blocksworld action in the domain's English
    # An action is legal where it was drawn: its block tops a stack (stacks read top to bottom) or is held.
    for state, action in pairs:
        now = re.sub(r" \([^)]*\)", "", state.removeprefix(STACKS))  # the goals beside the blocks left out
        block = action.split(" block")[0].split("the ")[-1]
        tops = [stack.split(" on ")[0] for stack in now.split(".")[0].split("; ")]
        assert f"the {block} block" in tops or f"holding the {block} block" in now, (state, action)


def test_plan_prompts_share_the_pool_and_choices_start_with_the_legal_actions():
    prompts, choices = plan_prompts(3, 12, seed=0)
    assert len(prompts) == 3 and len(set(prompts)) == 3
    intro = default_pool()["intro"]
    assert all(p.startswith(intro) for p in prompts) and all(p.endswith("\n") for p in prompts)
    assert len(choices) == 12 and len(set(choices)) == 12
    task = BlocksworldTask()
    state = task.initial_state({"init": ["(clear a)", "(clear b)", "(handempty)", "(ontable a)", "(on b c)",
                                         "(ontable c)"], "goal": ["(on a b)"]})
    legal = task.legal_actions(state)
    assert len(legal) == 2 and nearby_actions(task, state, 2) == legal
    more = nearby_actions(task, state, 8)
    assert more[:2] == legal and len(set(more)) == 8 and "put down the red block" in more
    with pytest.raises(ValueError, match="distinct actions exist"):
        nearby_actions(task, state, 1000)


def test_padding_overhead():
    assert padding_overhead([1, 10, 1, 10], 2, sort=False) == (pytest.approx(18 / 40), 40)
    assert padding_overhead([1, 10, 1, 10], 2, sort=True) == (0.0, 22)
    assert padding_overhead([3, 5, 4], 1, sort=False) == (0.0, 12)


def test_naive_reference_agrees_with_score_choices(tiny_generator):
    prompt = "the red block is on top of the blue block.\n"
    choices = ["pick up the red block", " put down", "unstack the blue block from on top of the yellow block"]
    naive = naive_score_choices(tiny_generator, prompt, choices)
    shared = tiny_generator.score_choices(prompt, choices)
    assert [(c.text, c.num_tokens) for c in naive] == [(c.text, c.num_tokens) for c in shared]
    assert [c.logprob for c in naive] == pytest.approx([c.logprob for c in shared], abs=1e-4)
    assert len({round(c.logprob, 3) for c in naive}) == 3


def test_bench_runs_end_to_end_on_tiny_models(tiny_srm, tiny_lm_tokenizer):
    from conftest import make_tiny_lm

    from srm_agent.generators import TransformersGenerator

    pairs, n_states = srm_pairs(10, seed=1)
    res = bench_srm(tiny_srm, pairs, n_states, [1, 4], 1, QUIET)
    assert set(res["batches"]) == {1, 4} and res["pairs"] == 10
    assert res["batches"][4]["max_abs_diff_vs_first"] < 1e-4  # batching does not change the scores
    assert res["batches"][1]["padding_sorted"] == 0.0 and tiny_srm.batch_size == 4  # restored
    generator = TransformersGenerator(make_tiny_lm(tiny_lm_tokenizer, max_position_embeddings=8192),
                                      tiny_lm_tokenizer, device="cpu")
    prompts, choices = plan_prompts(4, 3, seed=0, n_shots=1)
    out = bench_generator(generator, prompts, choices, [3], 1, 1, QUIET)
    entry = out["ks"][3]
    assert set(MODES) <= set(entry) and entry["max_abs_logprob_diff"] < 1e-4
    assert out["shared_vs_naive_max_abs_logprob_diff"] < 1e-4
    assert 0 < out["shared_prefix_tokens_mean"] < out["shared_prompt_tokens_mean"]


def test_bad_options_fail_in_one_line_before_any_model_loads():
    done = subprocess.run([sys.executable, "-m", "evals.throughput", "--ks", "4,500", "--no-progress"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and done.stderr.startswith("error: only ") and "K <=" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and done.stdout == ""
