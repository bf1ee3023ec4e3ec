"""The OpenAI-compatible generator against a small completions server over a tiny in-process model.

The server (tests/openai_fake.py) can misbehave the ways real engines do; the generator must find
out at construction and either work around it or refuse with an error naming the URL. The real
engine (llama-cpp-python's server) is tested in tests/test_llama_cpp_server.py.
"""

from __future__ import annotations

import asyncio
import math
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch

from srm_agent import InputError
from srm_agent.errors import ServerError
from srm_agent.generators import Generator, OpenAICompatibleGenerator, TransformersGenerator, generator_from_spec
from srm_agent.generators.openai_compat import ServerCapabilities
from srm_agent.generators.spec import parse_server_spec
from tests.conftest import make_tiny_lm
from tests.openai_fake import FakeCompletionsServer

PROMPT = "the red block is on top of the blue block.\npick up"
CHOICES = [" the red block", " the blue block\n", " the yellow block from on top of the red block"]


@pytest.fixture()
def peaked_lm(tiny_lm_tokenizer):
    """The tiny LM with sharper next-token distributions, so that tempered and raw log-probs differ."""
    model = make_tiny_lm(tiny_lm_tokenizer)
    with torch.no_grad():
        model.lm_head.weight.mul_(12.0)
    return model


@pytest.fixture()
def reference(peaked_lm, tiny_lm_tokenizer):
    return TransformersGenerator(peaked_lm, tiny_lm_tokenizer, device="cpu")


def serve(peaked_lm, tokenizer, **faults):
    fake = FakeCompletionsServer(peaked_lm, tokenizer, **faults)
    return fake, fake.serve()


def test_a_faithful_server_scores_choices_as_the_in_process_model(peaked_lm, tiny_lm_tokenizer, reference):
    fake, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        assert isinstance(generator, Generator)
        assert generator.model == "tiny"
        assert generator.capabilities == ServerCapabilities("echo", True, True, True)
        fake.requests.clear()
        scored = generator.score_choices(PROMPT, CHOICES)
    expected = reference.score_choices(PROMPT, CHOICES)
    assert [c.text for c in scored] == CHOICES
    assert [c.logprob for c in scored] == pytest.approx([c.logprob for c in expected], abs=1e-4)
    assert [c.num_tokens for c in scored] == [c.num_tokens for c in expected]
    assert len(fake.requests) == 1 and fake.requests[0]["prompt"] == [PROMPT + c for c in CHOICES]
    prompt_tokens = len(tiny_lm_tokenizer(PROMPT)["input_ids"])
    assert scored.usage.calls == 1
    assert scored.usage.prompt_tokens >= 3 * prompt_tokens  # the server's count: every prompt in full


def test_propose_returns_k_samples_with_untempered_logprobs(peaked_lm, tiny_lm_tokenizer, reference):
    fake, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        fake.requests.clear()
        proposed = generator.propose(PROMPT, 4, temperature=1.5, max_new_tokens=6, seed=3)
        again = generator.propose(PROMPT, 4, temperature=1.5, max_new_tokens=6, seed=3)
        greedy = generator.propose(PROMPT, 3, temperature=0, max_new_tokens=6)
    assert len(proposed) == 4 and all(math.isfinite(c.logprob) and c.num_tokens > 0 for c in proposed)
    assert [c.text for c in again] == [c.text for c in proposed]  # the seed fixes the samples
    assert fake.requests[0]["n"] == 4 and fake.requests[0]["top_p"] == 1.0 and fake.requests[0]["top_k"] == 0
    rescored = reference.score_choices(PROMPT, [c.text for c in proposed])
    same_tokens = [(c, r) for c, r in zip(proposed, rescored) if c.num_tokens == r.num_tokens]
    assert same_tokens
    for cand, check in same_tokens:
        assert cand.logprob == pytest.approx(check.logprob, abs=1e-4)
    assert proposed.usage.calls == 1 and proposed.usage.generated_tokens == sum(c.num_tokens for c in proposed)
    assert len(greedy) == 3 and len({c.text for c in greedy}) == 1


def test_tempered_samples_are_rescored_and_missing_batching_is_worked_around(peaked_lm, tiny_lm_tokenizer,
                                                                              reference):
    fake, served = serve(peaked_lm, tiny_lm_tokenizer, tempered=True, ignore_n=True, reject_lists=True)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        assert generator.capabilities == ServerCapabilities("echo", prompt_lists=False, n_samples=False,
                                                            raw_sampled_logprobs=False)
        fake.requests.clear()
        proposed = generator.propose(PROMPT, 3, temperature=1.0, max_new_tokens=6, seed=1)
        scored = generator.score_choices(PROMPT, CHOICES)
    # three sampling requests with distinct seeds, then one scoring request per sample
    assert len({r["seed"] for r in fake.requests[:3]}) == 3 and all(r.get("echo") for r in fake.requests[3:6])
    expected = reference.score_choices(PROMPT, [c.text for c in proposed])
    assert [c.logprob for c in proposed] == pytest.approx([c.logprob for c in expected], abs=1e-4)
    assert proposed.usage.calls == 6
    assert [c.logprob for c in scored] == pytest.approx([c.logprob for c in reference.score_choices(PROMPT, CHOICES)],
                                                        abs=1e-4)


def test_wrong_prompt_logprobs_are_refused_at_construction(peaked_lm, tiny_lm_tokenizer):
    _, served = serve(peaked_lm, tiny_lm_tokenizer, off_by_one=True)
    with served as url, pytest.raises(ServerError, match="prompt log-probs disagree") as caught:
        OpenAICompatibleGenerator(url, max_retries=0)
    assert caught.value.url == url


def test_wrong_prompt_logprobs_fall_back_to_decoding_forced_to_the_choice_tokens(peaked_lm, tiny_lm_tokenizer,
                                                                                  reference):
    fake, served = serve(peaked_lm, tiny_lm_tokenizer, off_by_one=True, grammar=True)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        assert generator.capabilities.scoring == "forced"
        fake.requests.clear()
        scored = generator.score_choices(PROMPT, CHOICES)
        again = asyncio.run(generator.ascore_choices(PROMPT, CHOICES))
        told = OpenAICompatibleGenerator(url, capabilities=generator.capabilities)  # no probe: finds the tokenizer
        unprobed = told.score_choices(PROMPT, CHOICES)
    ids = [tiny_lm_tokenizer(c, add_special_tokens=False)["input_ids"] for c in CHOICES]
    assert [r["grammar"] for r in fake.requests[:3]] == ["root ::= " + " ".join(f"<[{i}]>" for i in c) for c in ids]
    expected = reference.score_choices(PROMPT, CHOICES)
    for got in (scored, again, unprobed):
        assert [c.logprob for c in got] == pytest.approx([c.logprob for c in expected], abs=1e-4)
        assert [c.num_tokens for c in got] == [len(c) for c in ids]
    assert scored.usage.generated_tokens == sum(c.num_tokens for c in scored)


def test_a_server_without_prompt_logprobs_is_refused_by_name(peaked_lm, tiny_lm_tokenizer):
    _, served = serve(peaked_lm, tiny_lm_tokenizer, no_echo=True)
    with served as url, pytest.raises(ServerError, match="cannot score given continuations.*echo is not supported.*token-id grammar"):
        OpenAICompatibleGenerator(url, max_retries=0)


def test_an_unreachable_or_dead_server_fails_fast_with_its_url(peaked_lm, tiny_lm_tokenizer):
    _, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=1)
    with pytest.raises(ServerError, match="cannot be reached") as caught:
        generator.score_choices(PROMPT, CHOICES)  # the server is gone now
    assert caught.value.url == url
    with pytest.raises(ServerError, match="cannot be reached"):
        OpenAICompatibleGenerator(url, max_retries=0)


def test_async_and_threaded_calls_match_the_sequential_ones(peaked_lm, tiny_lm_tokenizer):
    _, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        sequential = [generator.score_choices(PROMPT, CHOICES[:i + 1]) for i in range(3)]
        proposed = generator.propose(PROMPT, 2, temperature=1.0, max_new_tokens=5, seed=7)

        async def both():
            return await asyncio.gather(*(generator.ascore_choices(PROMPT, CHOICES[:i + 1]) for i in range(3)),
                                        generator.apropose(PROMPT, 2, temperature=1.0, max_new_tokens=5, seed=7))

        *concurrent, aproposed = asyncio.run(both())
        asyncio.run(both())  # a second event loop gets its own async client
        with ThreadPoolExecutor(3) as pool:
            threaded = list(pool.map(lambda i: generator.score_choices(PROMPT, CHOICES[:i + 1]), range(3)))
    for got in (concurrent, threaded):
        assert [[c.logprob for c in g] for g in got] == [[c.logprob for c in g] for g in sequential]
    assert [c.text for c in aproposed] == [c.text for c in proposed]


def test_bad_input_names_the_field(peaked_lm, tiny_lm_tokenizer):
    _, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = OpenAICompatibleGenerator(url, max_retries=0)
        with pytest.raises(InputError, match=r"choices\[1\]"):
            generator.score_choices(PROMPT, [" a", ""])
        with pytest.raises(InputError, match="prompt"):
            generator.propose("", 2)
        with pytest.raises(InputError, match="k"):
            generator.propose(PROMPT, 0)
    with pytest.raises(InputError, match="base_url"):
        OpenAICompatibleGenerator("127.0.0.1:8000")


def test_generator_specs(peaked_lm, tiny_lm_tokenizer, tmp_path):
    assert parse_server_spec("openai:Qwen/Qwen2.5-0.5B@http://127.0.0.1:8000/v1") == (
        "Qwen/Qwen2.5-0.5B", "http://127.0.0.1:8000/v1")
    assert parse_server_spec("openai:http://127.0.0.1:8000/v1") == (None, "http://127.0.0.1:8000/v1")
    for bad in ("openai:", "openai:model", "openai:model@127.0.0.1:8000"):
        with pytest.raises(InputError, match="openai:MODEL@URL"):
            parse_server_spec(bad)
    _, served = serve(peaked_lm, tiny_lm_tokenizer)
    with served as url:
        generator = generator_from_spec(f"openai:{url}", max_retries=0)
        assert isinstance(generator, OpenAICompatibleGenerator) and generator.model == "tiny"
        assert generator_from_spec(f"openai:other@{url}", capabilities=ServerCapabilities()).model == "other"
        with pytest.raises(InputError, match="chat"):
            generator_from_spec(f"openai:{url}", chat=True)
    peaked_lm.save_pretrained(tmp_path / "lm")
    tiny_lm_tokenizer.save_pretrained(tmp_path / "lm")
    local = generator_from_spec(tmp_path / "lm", device="cpu")
    assert isinstance(local, TransformersGenerator)


def test_rescoring_keeps_empty_samples_and_merges_repeated_texts():
    from srm_agent.generators import Generation, Usage
    from srm_agent.generators.openai_compat import _rescorable
    from srm_agent.rule import Candidate

    generator = OpenAICompatibleGenerator.__new__(OpenAICompatibleGenerator)
    sampled = Generation([Candidate(" a", -1.0, 1), Candidate("", -0.5, 1), Candidate(" a", -1.0, 1),
                          Candidate(" b c", -2.0, 2)], Usage(1, 10, 5))
    assert _rescorable(sampled) == [" a", " b c"]
    scored = Generation([Candidate(" a", -3.0, 1), Candidate(" b c", -4.0, 2)], Usage(1, 20, 0))
    out = generator._rescored(sampled, scored)
    assert [(c.text, c.logprob) for c in out] == [(" a", -3.0), ("", -0.5), (" a", -3.0), (" b c", -4.0)]
    assert out.usage == Usage(2, 30, 5)
