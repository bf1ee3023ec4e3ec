"""Generator throughput: ``score_choices`` (one prompt forward whose KV cache the K choices share) against
:func:`naive_score_choices` (one full forward of prompt + choice per choice), cold, on a prompt sharing a
cached few-shot prefix (as in a tree search), and on the prompt just scored."""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

import torch

from evals.bench.machine import Progress, spread, table, timed
from srm_agent.generators import TransformersGenerator, common_prefix_length
from srm_agent.rule import Candidate

MODES = ("naive", "cold", "shared", "same")
MODE_HELP = {
    "naive": "one full forward of prompt + choice per choice",
    "cold": "score_choices with no cached prompt: one forward of the whole prompt, then the K choices",
    "shared": "score_choices on a new prompt whose few-shot part is cached (as in a search): the new tail only",
    "same": "score_choices on the prompt just scored (its whole KV cache is cached)",
}


def prompt_ids(generator: TransformersGenerator, prompt: str) -> list[int]:
    """The prompt's token ids exactly as the generator feeds them to its model (chat template included).

    The generator has no public encoder, so this is the benchmark's one use of a private method.
    """
    return generator._encode_prompt(prompt, reserve=0)


@torch.inference_mode()
def naive_score_choices(generator: TransformersGenerator, prompt: str, choices: Sequence[str]) -> list[Candidate]:
    """The log-prob of each choice after ``prompt``, from one full forward of prompt + choice each.

    The reference for ``TransformersGenerator.score_choices``: the same tokenisation (the prompt
    as the generator encodes it, each choice without special tokens) and the same sum of
    ``log_softmax`` of the raw logits over the choice tokens, without any KV-cache sharing or
    padding.
    """
    ids_prompt = torch.tensor([prompt_ids(generator, prompt)], device=generator.device)
    n_prompt = ids_prompt.shape[1]
    candidates = []
    for choice in choices:
        ids = generator.tokenizer(choice, add_special_tokens=False)["input_ids"]
        target = torch.tensor(ids, device=generator.device)
        full = torch.cat([ids_prompt, target[None]], dim=1)
        logits = generator.model(input_ids=full, attention_mask=torch.ones_like(full), use_cache=False).logits
        # Position t predicts token t + 1: the choice tokens are predicted at n_prompt - 1 ... n_prompt + len - 2.
        logp = torch.log_softmax(logits[0, n_prompt - 1: n_prompt - 1 + len(ids)].float(), dim=-1)
        total = logp.gather(-1, target[:, None]).sum()
        candidates.append(Candidate(text=choice, logprob=float(total), num_tokens=len(ids)))
    return candidates


def _uncached(generator: TransformersGenerator) -> TransformersGenerator:
    """The same model and tokenizer with an empty prompt KV cache (the weights are shared, not copied)."""
    return TransformersGenerator(generator.model, generator.tokenizer, device=generator.device, dtype=generator.dtype,
                                 chat=generator.chat, prefix_cache_size=generator.prefix_cache_size)


def bench_generator(generator: TransformersGenerator, prompts: list[str], choices: list[str], ks: Sequence[int],
                    repeats: int, naive_repeats: int, progress: Progress) -> dict[str, Any]:
    """Time per call of ``score_choices`` (cold, shared prefix, same prompt) and of the naive way, per K.

    ``prompts[0]`` is the base prompt; each "shared" call takes the next of ``prompts[1:]`` (never
    seen before), so ``len(prompts)`` must be at least ``1 + repeats * len(ks) + 1``.
    """
    device = generator.device
    base = prompts[0]
    fresh = iter(prompts[1:])
    _uncached(generator).score_choices(next(fresh), choices[:2])  # warm-up of both paths
    naive_score_choices(generator, base, choices[:1])
    progress.step()
    runs = {k: {m: [] for m in MODES} for k in ks}
    outs: dict[int, dict[str, list[Candidate]]] = {k: {} for k in ks}
    last_shared: dict[int, str] = {}
    for r in range(max(repeats, naive_repeats)):  # interleaved, so load bursts hit every way alike
        for k in ks:
            subset, run = choices[:k], runs[k]
            if r < naive_repeats:
                seconds, outs[k]["naive"] = timed(lambda: naive_score_choices(generator, base, subset), device)
                run["naive"].append(seconds)
                progress.step()
            if r < repeats:
                gen = _uncached(generator)
                for mode, prompt in (("cold", base), ("same", base), ("shared", next(fresh))):
                    seconds, outs[k][mode] = timed(lambda: gen.score_choices(prompt, subset), device)
                    run[mode].append(seconds)
                last_shared[k] = prompt
                progress.step()
    # The shared-prefix path against the naive way on its own prompt (the prefill is the same for every K).
    k0 = ks[0]
    shared_ref = naive_score_choices(generator, last_shared[k0], choices[:k0])
    shared_diff = max(abs(a.logprob - b.logprob) for a, b in zip(outs[k0]["shared"], shared_ref))
    base_ids = prompt_ids(generator, base)
    others = [prompt_ids(generator, p) for p in prompts[1:]]
    result: dict[str, Any] = {
        "prompt_tokens": len(base_ids), "shared_prompt_tokens_mean": statistics.fmean(map(len, others)),
        "shared_prefix_tokens_mean": statistics.fmean(common_prefix_length(base_ids, ids) for ids in others),
        "has_prefix_cache": generator.prefix_cache_size > 0,
        "repeats": repeats, "naive_repeats": naive_repeats, "modes": dict(MODE_HELP),
        "dtype": str(generator.dtype).removeprefix("torch."), "shared_vs_naive_k": k0,
        "shared_vs_naive_max_abs_logprob_diff": shared_diff, "ks": {},
    }
    for k in ks:
        run, out = runs[k], outs[k]
        for mode in ("cold", "same"):
            if [(c.text, c.num_tokens) for c in out[mode]] != [(c.text, c.num_tokens) for c in out["naive"]]:
                raise RuntimeError(f"K={k}: score_choices ({mode}) and the naive way disagree on texts or token counts")
        entry: dict[str, Any] = {"choice_tokens_mean": statistics.fmean(c.num_tokens for c in out["naive"])}
        for mode in MODES:
            entry[mode] = {"median_s": statistics.median(run[mode]), "best_s": min(run[mode]),
                           "spread": spread(run[mode]), "times": run[mode]}
        for mode in ("cold", "shared", "same"):
            entry[f"speedup_{mode}"] = entry["naive"]["median_s"] / entry[mode]["median_s"]
            entry[f"speedup_{mode}_best"] = entry["naive"]["best_s"] / entry[mode]["best_s"]
        entry["max_abs_logprob_diff"] = max(abs(a.logprob - b.logprob) for mode in ("cold", "same")
                                            for a, b in zip(out[mode], out["naive"]))
        entry["logprobs"] = {mode: [c.logprob for c in out[mode]] for mode in MODES}
        result["ks"][k] = entry
    return result


def print_generator(res: dict[str, Any], generator: TransformersGenerator, out: Callable[[str], None]) -> None:
    out(f"Generator score_choices: {type(generator.model).__name__} ({res['dtype']}), Blocksworld plan prompt of "
        f"{res['prompt_tokens']} tokens; median of {res['repeats']} (naive: {res['naive_repeats']})")
    if not res["has_prefix_cache"]:
        out("  (this generator keeps no prompt KV caches between calls: cold, shared and same cost alike)")

    def cell(v: dict[str, float]) -> str:
        return f"{1000 * v['median_s']:.0f} [{1000 * v['best_s']:.0f}]"

    rows = [[str(k), f"{v['choice_tokens_mean']:.1f}", *(cell(v[m]) for m in MODES),
             *(f"{v[f'speedup_{m}']:.1f}x" for m in ("cold", "shared", "same")), f"{v['max_abs_logprob_diff']:.1e}"]
            for k, v in res["ks"].items()]
    out(table(["K", "choice tok", "naive ms", "cold ms", "shared ms", "same ms", "cold x", "shared x",
               "same x", "max|Δ logp|"], rows))
    for mode in MODES:
        out(f"  {mode + ':':8s}{MODE_HELP[mode]}")
    out("  ms = time per call, median [best] of the repeats; 'x' = speed-up over naive (medians).")
    out(f"  shared prompts: {res['shared_prompt_tokens_mean']:.0f} tokens on average, "
        f"{res['shared_prefix_tokens_mean']:.0f} of them in common with a cached prompt.")
    out(f"  max|Δ logp| = largest difference of the summed log-probs, cold and same vs naive; shared vs naive "
        f"(K={res['shared_vs_naive_k']}): {res['shared_vs_naive_max_abs_logprob_diff']:.1e}.")
    out("")
