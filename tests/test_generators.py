"""Generators: sampled proposals with untempered log-probs, shared-prefix choice scoring, accounting."""

from __future__ import annotations

import pytest
import torch

from srm_agent import InputError
from srm_agent.generators import Generator, TransformersGenerator, Usage, from_langchain

PROMPT = "the red block is on top of the blue block.\npick up"


def full_forward_logprob(generator, ids: list[int]) -> torch.Tensor:
    with torch.no_grad():
        return torch.log_softmax(generator.model(input_ids=torch.tensor([ids])).logits[0].float(), dim=-1)


def test_transformers_generator_satisfies_the_protocol(tiny_generator):
    assert isinstance(tiny_generator, Generator)


def test_propose_logprobs_are_untempered_token_sums(tiny_generator):
    proposals = tiny_generator.propose(PROMPT, 4, temperature=3.0, max_new_tokens=8, seed=0)
    prompt_ids = tiny_generator.tokenizer(PROMPT)["input_ids"]
    n_prompt = len(prompt_ids)
    assert len(proposals) == 4
    for new_ids, cand in zip(proposals.token_ids, proposals):
        assert len(new_ids) == cand.num_tokens
        ids = prompt_ids + new_ids
        logp = full_forward_logprob(tiny_generator, ids)
        expected = sum(float(logp[n_prompt - 1 + j, t]) for j, t in enumerate(ids[n_prompt:]))
        assert cand.logprob == pytest.approx(expected, abs=1e-4)


def test_propose_cuts_at_the_stop_string(tiny_generator):
    proposals = tiny_generator.propose(PROMPT, 8, temperature=5.0, max_new_tokens=24, stop=["e"], seed=1)
    stopped = 0
    for new_ids, cand in zip(proposals.token_ids, proposals):
        assert "e" not in cand.text
        kept = tiny_generator.tokenizer.decode(new_ids, skip_special_tokens=True)
        assert kept.startswith(cand.text)
        stopped += "e" in kept
    assert stopped > 0  # the stop string did occur, so the cut was exercised


def test_propose_reads_a_cached_prompt_prefix_once(tiny_generator):
    """A prompt that extends an earlier one runs only its new tokens, and samples exactly as if cold."""
    cold = TransformersGenerator(tiny_generator.model, tiny_generator.tokenizer, device="cpu", prefix_cache_size=0)
    longer = PROMPT + " the blue block.\nput down"
    tiny_generator.propose(PROMPT, 3, max_new_tokens=6, seed=4)
    fed: list[int] = []
    hook = tiny_generator.model.register_forward_pre_hook(
        lambda module, args, kwargs: fed.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    try:
        warm = tiny_generator.propose(longer, 3, max_new_tokens=6, seed=5)
    finally:
        hook.remove()
    ids = tiny_generator.tokenizer(longer)["input_ids"]
    shared = len(tiny_generator.tokenizer(PROMPT)["input_ids"]) - 1  # the cached prompt, but for its last token
    new = len(ids) - shared
    assert new < len(ids) // 2 and fed[0] == new - 1  # the prompt's tail after the cached prefix
    assert set(fed[1:]) == {1}  # then one new token per step
    for got, want in zip(warm, cold.propose(longer, 3, max_new_tokens=6, seed=5), strict=True):
        assert (got.text, got.num_tokens) == (want.text, want.num_tokens)
        assert got.logprob == pytest.approx(want.logprob, abs=1e-4)


def test_each_call_returns_its_own_usage(tiny_generator):
    proposals = tiny_generator.propose(PROMPT, 3, max_new_tokens=5, seed=2)
    n_prompt = len(tiny_generator.tokenizer(PROMPT)["input_ids"])
    usage = proposals.usage
    assert (usage.calls, usage.prompt_tokens) == (1, n_prompt)
    assert usage.generated_tokens == sum(c.num_tokens for c in proposals) > 0
    scored = tiny_generator.score_choices(PROMPT, ["up", "down"])
    n_choices = sum(len(tiny_generator.tokenizer(c, add_special_tokens=False)["input_ids"]) for c in ["up", "down"])
    assert scored.usage == Usage(calls=1, prompt_tokens=n_prompt + n_choices, generated_tokens=0)
    assert (proposals.usage + scored.usage).calls == 2


def test_propose_samples_as_transformers_generate_does(tiny_generator):
    """The decoding loop draws the same tokens as ``model.generate`` with the same seed (pure temperature)."""
    prompt_ids = tiny_generator.tokenizer(PROMPT)["input_ids"]
    proposals = tiny_generator.propose(PROMPT, 3, temperature=1.5, max_new_tokens=6, seed=11)
    batch = torch.tensor([prompt_ids] * 3)
    torch.manual_seed(11)
    out = tiny_generator.model.generate(batch, attention_mask=torch.ones_like(batch), do_sample=True, temperature=1.5,
                                        top_k=0, top_p=1.0, max_new_tokens=6, pad_token_id=tiny_generator._pad_id)
    for row, new_ids in zip(out[:, len(prompt_ids):].tolist(), proposals.token_ids):
        assert row[: len(new_ids)] == new_ids


def test_threads_sharing_a_generator_get_their_own_samples_and_usage(tiny_generator):
    from concurrent.futures import ThreadPoolExecutor

    prompts = [PROMPT + f" the {c} block" for c in ("red", "blue", "green", "white")]
    alone = [tiny_generator.propose(p, 3, temperature=1.0, max_new_tokens=6, seed=i) for i, p in enumerate(prompts)]
    with ThreadPoolExecutor(4) as pool:
        together = list(pool.map(lambda ip: tiny_generator.propose(ip[1], 3, temperature=1.0, max_new_tokens=6,
                                                                     seed=ip[0]), enumerate(prompts)))
    for a, b in zip(alone, together, strict=True):
        assert [c.text for c in a] == [c.text for c in b] and a.usage == b.usage
        assert [c.logprob for c in a] == pytest.approx([c.logprob for c in b], abs=1e-4)


def test_seed_reproduces_proposals(tiny_generator):
    first = tiny_generator.propose(PROMPT, 4, temperature=2.0, max_new_tokens=6, seed=7)
    again = tiny_generator.propose(PROMPT, 4, temperature=2.0, max_new_tokens=6, seed=7)
    other = tiny_generator.propose(PROMPT, 4, temperature=2.0, max_new_tokens=6, seed=8)
    assert first.token_ids == again.token_ids != other.token_ids
    # the second call reads the prompt from the prefix cache: the same tokens, log-probs equal to float noise
    assert [c.logprob for c in again] == pytest.approx([c.logprob for c in first], abs=1e-5)


def test_temperature_zero_is_greedy(tiny_generator):
    proposals = tiny_generator.propose(PROMPT, 3, temperature=0.0, max_new_tokens=6)
    assert len(proposals) == 3 and len(set(proposals)) == 1


def test_score_choices_matches_one_forward_per_choice(tiny_generator):
    choices = [" the red block", " put down the yellow block\n", " stack", " unstack the blue block from on top"]
    shared = tiny_generator.score_choices(PROMPT, choices)
    prompt_ids = tiny_generator.tokenizer(PROMPT)["input_ids"]
    for choice, cand in zip(choices, shared):
        ids = tiny_generator.tokenizer(choice, add_special_tokens=False)["input_ids"]
        logp = full_forward_logprob(tiny_generator, prompt_ids + ids)
        expected = sum(float(logp[len(prompt_ids) - 1 + j, t]) for j, t in enumerate(ids))
        assert cand.logprob == pytest.approx(expected, abs=1e-4)
        assert (cand.text, cand.num_tokens) == (choice, len(ids))


def test_score_choices_runs_the_prompt_once(tiny_generator):
    lengths = []
    hook = tiny_generator.model.register_forward_hook(
        lambda module, args, kwargs, out: lengths.append(kwargs["input_ids"].shape), with_kwargs=True)
    try:
        tiny_generator.score_choices(PROMPT * 4, [" a", " the red block", " b", " c", " d", " e"])
    finally:
        hook.remove()
    n_prompt = len(tiny_generator.tokenizer(PROMPT * 4)["input_ids"])
    assert len(lengths) == 2
    assert lengths[0] == (1, n_prompt)
    assert lengths[1][0] == 6 and lengths[1][1] < n_prompt  # the choices alone, on the shared KV cache


def test_score_choices_reuses_a_shared_prompt_prefix(tiny_generator):
    lengths = []
    hook = tiny_generator.model.register_forward_hook(
        lambda module, args, kwargs, out: lengths.append(kwargs["input_ids"].shape[1]), with_kwargs=True)
    few_shot = PROMPT * 6
    try:
        tiny_generator.score_choices(few_shot + "\nput down", [" a", " b"])
        lengths.clear()
        extended = few_shot + "\nstack the red block"
        reused = tiny_generator.score_choices(extended, [" on", " the blue block"])
    finally:
        hook.remove()
    n_prompt = len(tiny_generator.tokenizer(extended)["input_ids"])
    assert lengths[0] < n_prompt // 4  # only the new tail of the prompt ran
    fresh = TransformersGenerator(tiny_generator.model, tiny_generator.tokenizer, device="cpu", prefix_cache_size=0)
    expected = fresh.score_choices(extended, [" on", " the blue block"])
    assert [c.logprob for c in reused] == pytest.approx([c.logprob for c in expected], abs=1e-4)


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda g: g.propose(PROMPT, 0), "k"),
        (lambda g: g.propose("", 2), "prompt"),
        (lambda g: g.propose(PROMPT, 2, temperature=-1.0), "temperature"),
        (lambda g: g.propose(PROMPT, 2, max_new_tokens=0), "max_new_tokens"),
        (lambda g: g.propose("block " * 600, 2), "prompt"),
        (lambda g: g.score_choices(PROMPT, []), "choices"),
        (lambda g: g.score_choices(PROMPT, ["up", ""]), "choices[1]"),
    ],
)
def test_bad_input_names_the_field(tiny_generator, call, field):
    with pytest.raises(InputError) as info:
        call(tiny_generator)
    assert info.value.field == field


def test_langchain_pipeline_serves_as_the_proposer(tiny_generator):
    from langchain_huggingface import ChatHuggingFace, HuggingFacePipeline
    from transformers import pipeline

    tokenizer = tiny_generator.tokenizer
    pipe = pipeline("text-generation", model=tiny_generator.model, tokenizer=tokenizer, device="cpu")
    llm = HuggingFacePipeline(pipeline=pipe)
    generator = from_langchain(llm)
    assert generator.model is tiny_generator.model and not generator.chat
    assert generator.score_choices(PROMPT, [" up"]) == tiny_generator.score_choices(PROMPT, [" up"])
    assert len(generator.propose(PROMPT, 2, max_new_tokens=4, seed=0)) == 2

    tokenizer.chat_template = "{% for m in messages %}<{{ m['role'] }}>{{ m['content'] }}\n{% endfor %}<assistant>"
    chat = from_langchain(ChatHuggingFace(llm=llm, tokenizer=tokenizer))
    assert chat.chat
    assert len(chat.propose(PROMPT, 2, max_new_tokens=4, seed=0)) == 2


def test_a_langchain_model_without_logprobs_is_refused():
    from langchain_core.language_models.fake import FakeListLLM

    with pytest.raises(TypeError, match="log-probs"):
        from_langchain(FakeListLLM(responses=["pick up the red block"]))


@pytest.mark.slow
def test_embedded_smollm2_converts_once_then_loads_from_the_cache(tmp_path, monkeypatch, capfd):
    from srm_agent import default_generator
    from srm_agent.embedded import converted_generator_dir

    monkeypatch.setenv("SRM_AGENT_CACHE", str(tmp_path))
    first = default_generator(device="cpu")
    shown = capfd.readouterr().err  # every phase of the conversion says what it is doing
    assert all(step in shown for step in ("reading the tokenizer", "de-quantising", "writing", "Converted in"))
    cached = converted_generator_dir()
    assert cached.parent == tmp_path and (cached / "model.safetensors").is_file()
    assert type(first.model).__name__ == "LlamaForCausalLM"
    assert sum(p.numel() for p in first.model.parameters()) == 134_515_008

    second = default_generator(device="cpu")
    for (name, a), (_, b) in zip(first.model.state_dict().items(), second.model.state_dict().items()):
        assert torch.equal(a, b), name

    prompt = ("I have that the red block is on top of the blue block and my hand is empty.\n"
              "My plan is as follows:\n[PLAN]\n")
    proposals = second.propose(prompt, 2, max_new_tokens=12, stop=["\n"], seed=0)
    assert len(proposals) == 2 and all(c.logprob < 0 and c.num_tokens >= 1 for c in proposals)
    assert all("\n" not in c.text for c in proposals)
    choices = ["unstack the red block from on top of the blue block", "put the sky on the table"]
    scored = second.score_choices(prompt, choices)
    assert scored[0].logprob / scored[0].num_tokens > scored[1].logprob / scored[1].num_tokens


def test_a_long_step_reports_until_it_ends():
    import io
    import threading

    from srm_agent.console import long_step

    out = io.StringIO()
    released = threading.Event()
    with long_step("converting", every=0.01, stream=out):
        for _ in range(1000):  # wait for two heartbeats, however loaded the machine is
            if out.getvalue().count("…") >= 3:
                break
            released.wait(0.01)
    lines = out.getvalue().splitlines()
    assert lines[0] == "converting …" and lines[1].startswith("  … ") and lines[1].endswith(" s")
    after = out.getvalue()
    released.wait(0.05)
    assert out.getvalue() == after  # silent once the step is over
