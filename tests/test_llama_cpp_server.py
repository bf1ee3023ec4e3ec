"""The server generator against a real engine: llama-cpp-python's OpenAI-compatible server on loopback,
serving the embedded SmolLM2 GGUF, compared with the same GGUF de-quantised and run in-process.

``make test`` installs llama-cpp-python (``make install-llama-cpp``); without it these tests fail and
say so rather than skip.
"""

from __future__ import annotations

import math
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import pytest

from srm_agent.errors import ServerError

pytestmark = pytest.mark.slow

# Quantised (Q4_1 GGUF through llama.cpp's kernels) against de-quantised fp32 weights in torch:
# measured on Blocksworld prompts, the largest gap was about 0.02 nats per token (README).
TOLERANCE_PER_TOKEN = 0.05


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def llama_cpp_server(gguf: Path, log_path: Path) -> Iterator[tuple[str, subprocess.Popen]]:
    """``python -m llama_cpp.server`` on a free loopback port; yields (base URL, process), stops it after."""
    try:
        import llama_cpp.server  # noqa: F401
    except ImportError as exc:
        pytest.fail(f"llama-cpp-python with its server extra is not installed ({exc}); run `make install-llama-cpp`")
    port = _free_port()
    with log_path.open("wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--host",
                                 "127.0.0.1", "--port", str(port), "--n_ctx", "4096", "--n_threads", "2"],
                                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"llama_cpp.server exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                urllib.request.urlopen(f"{url}/models", timeout=2).read()
                break
            except OSError:
                time.sleep(0.5)
        else:
            pytest.fail(f"llama_cpp.server did not answer at {url} within 120 s: {log_path.read_text()[-2000:]}")
        yield url, proc
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


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
    # scored by grammar-forced decoding instead. It answers one prompt and one sample per request.
    assert caps.scoring == "grammar"
    assert not caps.prompt_lists and not caps.n_samples
    assert caps.raw_sampled_logprobs


def test_propose_returns_k_samples_with_finite_logprobs(server, in_process, blocksworld):
    task, problems = blocksworld
    prompt = task.prompt(task.initial_state(problems[0]))
    proposed = server.propose(prompt, 3, temperature=0.8, max_new_tokens=16, stop=["\n"], seed=0)
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
        options = {"strategy": "bfs", "k": 3, "max_depth": 2, "beam_width": 3, "max_expansions": 8, "seed": seed}
        for problem in problems:
            remote = build_tree_search(task, server, srm, **options).invoke({"problem": problem})["result"]
            local = build_tree_search(task, in_process, srm, **options).invoke({"problem": problem})["result"]
            assert remote["failure"] is None
            assert (remote["solved"], remote["path"]) == (local["solved"], local["path"])


def test_a_server_that_dies_mid_search_ends_it_with_a_recorded_failure(gguf, blocksworld, tmp_path):
    from graphs.tree_search import build_tree_search
    from srm_agent.generators import OpenAICompatibleGenerator

    task, problems = blocksworld

    class KillsItsServerAfterOneCall:
        def __init__(self, generator, proc):
            self.generator, self.proc, self.calls = generator, proc, 0

        def propose(self, *args, **kwargs):
            return self._call(self.generator.propose, *args, **kwargs)

        def score_choices(self, *args, **kwargs):
            return self._call(self.generator.score_choices, *args, **kwargs)

        def _call(self, method, *args, **kwargs):
            self.calls += 1
            if self.calls == 2:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            return method(*args, **kwargs)

    with llama_cpp_server(gguf, tmp_path / "server.log") as (url, proc):
        generator = KillsItsServerAfterOneCall(OpenAICompatibleGenerator(url, max_retries=2), proc)
        started = time.time()
        result = build_tree_search(task, generator, evaluator="none", k=1, max_depth=3,
                                   strategy="dfs").invoke({"problem": problems[0]})["result"]
    assert time.time() - started < 60
    assert generator.calls == 2
    assert "generator failed" in result["failure"] and "cannot be reached" in result["failure"]
    assert url in result["failure"]
    with pytest.raises(ServerError, match="cannot be reached"):
        generator.generator.score_choices("x", [" y"])
