"""The server generator against a real engine: llama-cpp-python's OpenAI-compatible server on loopback,
serving the embedded SmolLM2 GGUF, compared with the same GGUF de-quantised and run in-process.

``make test`` installs llama-cpp-python (``make install-llama-cpp``); without it these tests fail and
say so rather than skip.
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import time
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from srm_agent.errors import ServerError

pytestmark = pytest.mark.slow

# Q4_1 weights through llama.cpp's kernels (activations quantised to 8 bits) against the same weights
# de-quantised to fp32 in torch: on Blocksworld choices the gap measured up to 0.09 nats per token, 0.02 on
# average (README, evals.generator_backends).
TOLERANCE_PER_TOKEN = 0.15


@contextmanager
def llama_cpp_server(gguf: Path, log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """The real server on a free loopback port; a missing install or a failed start fails the test."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama-cpp-python with its server extra is not installed ({exc}); run `make install-llama-cpp`")
    from srm_agent.generators.llama_cpp import llama_cpp_server as serve

    with ExitStack() as stack:
        try:
            running = stack.enter_context(serve(gguf, n_threads=2, log_path=log_path))
        except ServerError as exc:
            pytest.fail(str(exc))
        yield running


@pytest.fixture(scope="module")
def gguf() -> Path:
    from srm_agent.embedded import embedded_generator_gguf

    return embedded_generator_gguf()


@pytest.fixture(scope="module")
def server(gguf, tmp_path_factory):
    from srm_agent.generators import OpenAICompatibleGenerator

    with llama_cpp_server(gguf, tmp_path_factory.mktemp("llama") / "server.log") as (url, _):
        yield OpenAICompatibleGenerator(url)


@pytest.fixture(scope="module")
def in_process():
    from srm_agent.embedded import default_generator

    return default_generator(device="cpu")


@pytest.fixture(scope="module")
def blocksworld():
    from srm_tasks.blocksworld import BlocksworldTask
    from srm_tasks.blocksworld.problems import generate_problems

    return BlocksworldTask(), generate_problems(2, blocks=(4, 4), steps=(2, 2), seed=3)


def test_the_probe_finds_what_llama_cpp_python_does(server):
    caps = server.capabilities
    # Its echoed prompt log-probs are one position off for a model without BOS (SmolLM2): choices are
    # scored by greedy decoding held to their tokens instead. It answers one prompt and one sample per request.
    assert caps.scoring == "forced"
    assert not caps.prompt_lists and not caps.n_samples
    assert caps.raw_sampled_logprobs


def test_propose_returns_k_samples_with_finite_logprobs(server, in_process, blocksworld):
    task, problems = blocksworld
    prompt = task.prompt(task.initial_state(problems[0]))
    proposed = server.propose(prompt, 3, temperature=0.8, max_new_tokens=10, stop=["\n"], seed=0)
    assert len(proposed) == 3
    assert all(math.isfinite(c.logprob) and c.logprob < 0 and c.num_tokens > 0 for c in proposed)
    assert proposed.usage.calls == 3 and proposed.usage.generated_tokens > 0
    assert proposed.usage.prompt_tokens >= 3 * len(in_process.tokenizer(prompt)["input_ids"])
    # untempered: the in-process model gives each sample about the same log-prob
    rescored = in_process.score_choices(prompt, [c.text for c in proposed if c.text])
    for cand, check in zip([c for c in proposed if c.text], rescored):
        if cand.num_tokens == check.num_tokens:
            assert abs(cand.logprob - check.logprob) / cand.num_tokens < TOLERANCE_PER_TOKEN


def test_score_choices_agrees_with_the_in_process_model(server, in_process, blocksworld):
    task, problems = blocksworld
    worst = 0.0
    for problem in problems:
        state = task.initial_state(problem)
        prompt, actions = task.prompt(state), task.legal_actions(state)
        remote, local = server.score_choices(prompt, actions), in_process.score_choices(prompt, actions)
        assert [c.num_tokens for c in remote] == [c.num_tokens for c in local]
        worst = max(worst, *(abs(r.logprob - c.logprob) / c.num_tokens for r, c in zip(remote, local)))
        assert [c.text for c in remote] == actions
    assert worst < TOLERANCE_PER_TOKEN, worst


def test_a_blocksworld_search_through_the_server_solves_what_the_in_process_one_solves(
        server, in_process, blocksworld):
    from graphs.tree_search import build_tree_search
    from srm_agent.embedded import default_srm

    task, problems = blocksworld
    srm = default_srm(device="cpu")
    for seed in (0, 1):
        options = {"strategy": "bfs", "k": 3, "max_depth": 2, "beam_width": 3, "max_expansions": 4, "seed": seed}
        for problem in problems[:1]:
            remote = build_tree_search(task, server, srm, **options).invoke({"problem": problem})["result"]
            local = build_tree_search(task, in_process, srm, **options).invoke({"problem": problem})["result"]
            assert remote["failure"] is None
            assert (remote["solved"], remote["path"]) == (local["solved"], local["path"])


def test_a_server_that_dies_mid_search_ends_it_with_a_recorded_failure(gguf, server, blocksworld, tmp_path):
    from graphs.tree_search import build_tree_search
    from srm_agent.generators import OpenAICompatibleGenerator

    task, problems = blocksworld

    class KillsItsServerAfterOneCall:
        def __init__(self, generator, proc):
            self.generator, self.proc, self.calls, self.killed_at = generator, proc, 0, None

        def propose(self, *args, **kwargs):
            return self._call(self.generator.propose, *args, **kwargs)

        def score_choices(self, *args, **kwargs):
            return self._call(self.generator.score_choices, *args, **kwargs)

        def _call(self, method, *args, **kwargs):
            self.calls += 1
            if self.calls == 2:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
                self.killed_at = time.time()
            return method(*args, **kwargs)

    with llama_cpp_server(gguf, tmp_path / "server.log") as (url, proc):
        # the same engine as the module's server: its probe's findings hold, no need to probe again
        generator = KillsItsServerAfterOneCall(
            OpenAICompatibleGenerator(url, max_retries=2, capabilities=server.capabilities), proc)
        result = build_tree_search(task, generator, evaluator="prior", k=1, max_depth=3,
                                   strategy="dfs").invoke({"problem": problems[0]})["result"]
        ended = time.time()
    assert ended - generator.killed_at < 30  # retries with backoff, then the failure: no hang
    assert generator.calls == 2
    assert result["failure"].startswith("ServerError") and "cannot be reached" in result["failure"]
    assert url in result["failure"]
    with pytest.raises(ServerError, match="cannot be reached"):
        generator.generator.score_choices("x", [" y"])


def test_llama_cpp_in_process_agrees_with_transformers_and_reuses_the_prompt(gguf, in_process, blocksworld):
    from srm_agent.generators.llama_cpp import LlamaCppGenerator

    task, problems = blocksworld
    generator = LlamaCppGenerator(gguf, n_threads=2, max_choices=2)  # 2: a state's actions take two batches
    state = task.initial_state(problems[0])
    prompt, actions = task.prompt(state), task.legal_actions(state)
    scored, local = generator.score_choices(prompt, actions), in_process.score_choices(prompt, actions)
    assert scored.token_ids == local.token_ids
    for got, ref in zip(scored, local):
        assert abs(got.logprob - ref.logprob) / ref.num_tokens < TOLERANCE_PER_TOKEN
    proposed = generator.propose(prompt, 3, temperature=0.8, max_new_tokens=12, stop=["\n"], seed=0)
    assert len(proposed) == 3 and proposed.usage.generated_tokens == sum(c.num_tokens for c in proposed)
    assert [c.text for c in generator.propose(prompt, 3, temperature=0.8, max_new_tokens=12, stop=["\n"], seed=0)] \
        == [c.text for c in proposed]
    assert all("\n" not in c.text and len(ids) == c.num_tokens for c, ids in zip(proposed, proposed.token_ids))
    free = generator.propose(prompt, 3, temperature=1.0, max_new_tokens=8, seed=1)
    checks = in_process.score_choices(prompt, [c.text for c in free])
    compared = [(c, r) for c, r in zip(free, checks) if r.num_tokens == c.num_tokens]
    assert compared  # untempered log-probs, as transformers gives them for the same tokens
    for cand, check in compared:
        assert abs(cand.logprob - check.logprob) / cand.num_tokens < TOLERANCE_PER_TOKEN
