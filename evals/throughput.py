"""Throughput of the embedded SRM and generator: ``python -m evals.throughput [--quick]``.

A benchmark that prints figures; it asserts nothing. It measures, in one run:

1. SRM (``default_srm()``, MiniLM-L6): candidates/s of ``score_pairs`` at several batch sizes on
   procedurally built Blocksworld-like (state, action) pairs, the padding overhead with and
   without length sorting, the tokenizer's share of the time, and the fraction of the
   machine's measured matmul FLOP/s that the SRM reaches.
2. Generator (``default_generator()``, SmolLM2-135M): ``score_choices`` (one prompt forward
   whose KV cache the K choices share) against :func:`naive_score_choices` (one full forward of
   prompt + choice per choice), and the largest difference between their log-probabilities.
   ``score_choices`` is timed cold (no cached prompt), on a new prompt sharing a cached few-shot
   prefix (as in a tree search), and on the prompt just scored.
3. The machine: CPU model, torch version and threads, device, load average.

``naive_score_choices`` is public: tests use it as the reference for ``score_choices``.
No external data is read; every text is generated from a seeded RNG.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from srm_agent.console import HelpFormatter, positive_int
from srm_agent.generators import common_prefix_length
from srm_agent.rule import Candidate

# -- the naive reference ---------------------------------------------------------------------


@torch.inference_mode()
def naive_score_choices(generator, prompt: str, choices: Sequence[str]) -> list[Candidate]:
    """The log-prob of each choice after ``prompt``, from one full forward of prompt + choice each.

    The reference for ``TransformersGenerator.score_choices``: the same tokenisation (the prompt
    as the generator encodes it, each choice without special tokens) and the same sum of
    ``log_softmax`` of the raw logits over the choice tokens, without any KV-cache sharing or
    padding.
    """
    choice_ids = generator._encode_choices(choices)
    prompt_ids = torch.tensor([generator._encode_prompt(prompt, reserve=0)], device=generator.device)
    n_prompt = prompt_ids.shape[1]
    candidates = []
    for choice, ids in zip(choices, choice_ids):
        target = torch.tensor(ids, device=prompt_ids.device)
        full = torch.cat([prompt_ids, target[None]], dim=1)
        logits = generator.model(input_ids=full, attention_mask=torch.ones_like(full), use_cache=False).logits
        # Position t predicts token t + 1: the choice tokens are predicted at n_prompt - 1 ... n_prompt + len - 2.
        logp = torch.log_softmax(logits[0, n_prompt - 1: n_prompt - 1 + len(ids)].float(), dim=-1)
        total = logp.gather(-1, target[:, None]).sum()
        candidates.append(Candidate(text=choice, logprob=float(total), num_tokens=len(ids)))
    return candidates


# -- procedural Blocksworld-like text ----------------------------------------------------------

COLOURS = (
    "red", "blue", "green", "yellow", "orange", "purple", "white", "black", "pink", "brown", "grey", "cyan",
    "magenta", "violet", "gold", "silver", "dark green", "light blue", "dark red", "pale yellow", "navy blue",
    "olive", "teal", "maroon",
)


def _world(rng: random.Random, n_blocks: int) -> tuple[list[str], list[str]]:
    """Random stacks of ``n_blocks`` coloured blocks: the block names and the facts that describe them."""
    names = rng.sample(COLOURS, n_blocks)
    stacks: list[list[str]] = []
    for name in names:
        if not stacks or rng.random() < 0.4:
            stacks.append([name])
        else:
            rng.choice(stacks).append(name)
    facts = []
    for stack in stacks:
        facts.append(f"the {stack[-1]} block is clear")
        facts.append(f"the {stack[0]} block is on the table")
        facts.extend(f"the {above} block is on top of the {below} block" for below, above in zip(stack, stack[1:]))
    rng.shuffle(facts)
    return names, ["the hand is empty", *facts]


def _goal(rng: random.Random, names: list[str]) -> list[str]:
    order = rng.sample(names, min(len(names), rng.randint(2, 4)))
    return [f"the {a} block is on top of the {b} block" for a, b in zip(order, order[1:])]


def _action(rng: random.Random, names: list[str]) -> str:
    a, b = rng.sample(names, 2)
    return rng.choice((
        f"unstack the {a} block from on top of the {b} block",
        f"stack the {a} block on top of the {b} block",
        f"pick up the {a} block from the table",
        f"put down the {a} block on the table",
    ))


def _n_tokens(tokenizer, text: str) -> int:
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _sized_action(rng: random.Random, names: list[str], tokenizer, lo: int, hi: int) -> str:
    for _ in range(1000):
        action = _action(rng, names)
        if lo <= _n_tokens(tokenizer, action) <= hi:
            return action
    raise RuntimeError(f"no action of {lo}-{hi} tokens found")


def _sentence(items: list[str]) -> list[str]:
    """The items as comma-separated pieces of one sentence."""
    return [item + ("." if i == len(items) - 1 else ",") for i, item in enumerate(items)]


def _state(rng: random.Random, tokenizer, target: int) -> tuple[str, list[str]]:
    """A Blocksworld-like state (initial facts, goal, plan so far) of about ``target`` tokens, and its blocks."""
    names, facts = _world(rng, rng.randint(3, min(len(COLOURS), 4 + target // 30)))
    pieces = ["As initial conditions I have that,", *_sentence(facts), "My goal is to have that",
              *_sentence(_goal(rng, names)), "My plan so far is:"]
    text, used = [], 0
    for i in range(10_000):
        piece = pieces[i] if i < len(pieces) else _action(rng, names) + ","
        text.append(piece)
        used += _n_tokens(tokenizer, piece)  # WordPiece splits on spaces, so piece counts add up
        if used >= target:
            break
    return " ".join(text)[:-1] + ".", names


def make_srm_pairs(tokenizer, n_pairs: int, seed: int, *, state_tokens: tuple[int, int] = (60, 250),
                   action_tokens: tuple[int, int] = (8, 15)) -> tuple[list[tuple[str, str]], int]:
    """``n_pairs`` shuffled (state, action) pairs, 1-4 actions per state; returns them and the state count."""
    rng = random.Random(seed)
    pairs: list[tuple[str, str]] = []
    n_states = 0
    while len(pairs) < n_pairs:
        state, names = _state(rng, tokenizer, rng.randint(*state_tokens))
        n_states += 1
        for _ in range(min(rng.randint(1, 4), n_pairs - len(pairs))):
            pairs.append((state, _sized_action(rng, names, tokenizer, *action_tokens)))
    rng.shuffle(pairs)
    return pairs, n_states


_INSTRUCTIONS = (
    "I am playing with a set of blocks where I need to arrange the blocks into stacks. Here are the actions "
    "I can do\n\nPick up a block\nUnstack a block from on top of another block\nPut down a block\nStack a "
    "block on top of another block\n\n"
)


def _statement(rng: random.Random, n_blocks: int) -> tuple[list[str], str]:
    names, facts = _world(rng, n_blocks)
    text = (f"[STATEMENT]\nAs initial conditions I have that, {', '.join(facts)}.\n"
            f"My goal is to have that {' and '.join(_goal(rng, names))}.\n\nMy plan is as follows:\n\n[PLAN]\n")
    return names, text


def make_fewshot_prompts(generator, target_tokens: int, k_max: int, seed: int, n_prompts: int = 1, *,
                         choice_tokens: tuple[int, int] = (8, 12)) -> tuple[list[str], list[str]]:
    """PlanBench-style few-shot prompts and ``k_max`` distinct first steps (choices).

    All prompts share the same instructions and worked examples and differ in the final problem,
    as the prompts of one tree search do; the first is at most ``target_tokens`` long. The
    choices are actions on the first prompt's blocks, ``choice_tokens`` long.
    """
    rng = random.Random(seed)
    tokenizer = generator.tokenizer
    names, query = _statement(rng, 6)
    examples: list[str] = []
    misses = 0
    while misses < 50:  # add whole examples while they fit; a smaller one may still fit after a miss
        ex_names, ex = _statement(rng, rng.randint(2, 6))
        example = ex + "\n".join(_action(rng, ex_names) for _ in range(rng.randint(1, 6))) + "\n[PLAN END]\n\n"
        if len(generator._encode_prompt(_INSTRUCTIONS + "".join([*examples, example]) + query, reserve=0)) \
                > target_tokens:
            misses += 1
        else:
            examples.append(example)
    head = _INSTRUCTIONS + "".join(examples)
    prompts = [head + query, *(head + _statement(rng, 6)[1] for _ in range(n_prompts - 1))]
    choices: list[str] = []
    for _ in range(100_000):
        if len(choices) == k_max:
            break
        action = _action(rng, names)
        if action not in choices and choice_tokens[0] <= _n_tokens(tokenizer, action) <= choice_tokens[1]:
            choices.append(action)
    else:
        raise RuntimeError(f"only {len(choices)} distinct choices of {choice_tokens} tokens; ask for fewer")
    return prompts, choices


# -- measurement helpers -----------------------------------------------------------------------


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return time.perf_counter() - start, result


def _spread(times: list[float]) -> float:
    """(max - min) / median: how much the repeats disagree."""
    return (max(times) - min(times)) / statistics.median(times) if len(times) > 1 else 0.0


class _Progress:
    """A tqdm bar on stderr (when it is a terminal) and section printing that does not break it."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            try:
                from tqdm import tqdm
            except ImportError:
                pass
            else:
                self.bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True,
                                disable=None)

    def phase(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(name)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def print(self, text: str = "") -> None:
        if self.bar is not None:
            self.bar.clear()
        print(text, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: indent + "  ".join(c.rjust(w) for c, w in zip(cells, widths))  # noqa: E731
    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths), *map(line, rows)])


class _TimedTokenizer:
    """Forwards to a tokenizer and adds up the time spent in its ``__call__``."""

    def __init__(self, inner) -> None:
        self.inner = inner
        self.seconds = 0.0

    def __call__(self, *args, **kwargs):
        start = time.perf_counter()
        try:
            return self.inner(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - start

    def __getattr__(self, name):
        return getattr(self.inner, name)


# -- the three measurements ----------------------------------------------------------------------


def _load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes on a shared machine skew the timings)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine_context(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    ctx = {
        "cpu_model": cpu,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "dtype": str(dtype).removeprefix("torch."),
        "load_average": _load_average(),
    }
    return ctx


def matmul_peak(sizes: Sequence[int], dtype: torch.dtype, device: torch.device, repeats: int,
                progress: _Progress) -> dict[str, Any]:
    """Median FLOP/s of square matmuls per size; the peak is the best size's median."""
    per_size = {}
    for n in sizes:
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        out = torch.empty(n, n, device=device, dtype=dtype)
        _timed(lambda: torch.mm(a, b, out=out), device)  # warm-up (library and kernel set-up)
        one, _ = _timed(lambda: torch.mm(a, b, out=out), device)  # a guess of the cost
        inner = max(1, min(10_000, math.ceil(0.05 / max(one, 1e-6))))  # each sample lasts >= ~50 ms
        progress.step()

        def block() -> None:
            for _ in range(inner):
                torch.mm(a, b, out=out)

        times = []
        for _ in range(repeats):
            seconds, _ = _timed(block, device)
            times.append(seconds / inner)
            progress.step()
        per_size[n] = {"gflops": 2 * n**3 / statistics.median(times) / 1e9, "best_gflops": 2 * n**3 / min(times) / 1e9,
                       "spread": _spread(times)}
    best = max(per_size, key=lambda n: per_size[n]["gflops"])
    return {"dtype": str(dtype).removeprefix("torch."), "repeats": repeats, "sizes": per_size,
            "peak_gflops": per_size[best]["gflops"], "peak_size": best}


def _srm_flop_model(model) -> tuple[int, int, int, int]:
    """(per-token params, per-sequence head params, layers, hidden) of a BERT-like classifier."""
    per_token = head = 0
    for name, p in model.named_parameters():
        if "embeddings." in name:
            continue
        if "pooler" in name or "classifier" in name or name.startswith("score."):
            head += p.numel()  # applied to one ([CLS]) vector per sequence
        else:
            per_token += p.numel()
    return per_token, head, model.config.num_hidden_layers, model.config.hidden_size


def srm_flops(flop_model: tuple[int, int, int, int], tokens: int) -> float:
    """Forward FLOPs of one sequence: 2 x params x tokens + attention scores and values (4 L T^2 d)."""
    per_token, head, layers, hidden = flop_model
    return 2.0 * per_token * tokens + 4.0 * layers * tokens**2 * hidden + 2.0 * head


def padding_overhead(lengths: Sequence[int], batch_size: int, *, sort: bool) -> tuple[float, int]:
    """Fraction of padded tokens, and the padded token count, when batching ``lengths`` in order or sorted."""
    order = sorted(range(len(lengths)), key=lengths.__getitem__) if sort else list(range(len(lengths)))
    padded = 0
    for start in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[start:start + batch_size]]
        padded += max(chunk) * len(chunk)
    return (padded - sum(lengths)) / padded, padded


def _padded_flops(flop_model, lengths: Sequence[int], batch_size: int) -> float:
    order = sorted(range(len(lengths)), key=lengths.__getitem__)
    total = 0.0
    for start in range(0, len(order), batch_size):
        chunk = [lengths[i] for i in order[start:start + batch_size]]
        total += len(chunk) * srm_flops(flop_model, max(chunk))
    return total


def bench_srm(srm, pairs: list[tuple[str, str]], n_states: int, batch_sizes: Sequence[int], repeats: int,
              progress: _Progress) -> dict[str, Any]:
    """Throughput of ``srm.score_pairs(pairs)`` per batch size (add ``fraction_of_peak`` with :func:`add_peak`)."""
    tok = srm.tokenizer
    states, actions = [s for s, _ in pairs], [a for _, a in pairs]
    lengths = [len(x) for x in tok(states, actions, truncation="only_first", max_length=srm.max_length)["input_ids"]]
    state_tokens = [len(x) for x in tok(states, add_special_tokens=False)["input_ids"]]
    action_tokens = [len(x) for x in tok(actions, add_special_tokens=False)["input_ids"]]
    flop_model = _srm_flop_model(srm.model)
    useful_flops = sum(srm_flops(flop_model, n) for n in lengths)
    result: dict[str, Any] = {
        "pairs": len(pairs), "distinct_states": n_states, "repeats": repeats,
        "tokens_per_pair": {"mean": statistics.fmean(lengths), "min": min(lengths), "max": max(lengths)},
        "state_tokens_mean": statistics.fmean(state_tokens), "action_tokens_mean": statistics.fmean(action_tokens),
        "action_tokens_range": [min(action_tokens), max(action_tokens)],
        "max_length": srm.max_length, "head_trained": srm.head_trained,
        "per_token_params": flop_model[0], "head_params": flop_model[1],
        "flops_per_pair_mean": useful_flops / len(pairs), "batches": {},
    }
    saved_batch, saved_tok = srm.batch_size, srm.tokenizer
    times: dict[int, list[float]] = {b: [] for b in batch_sizes}
    tok_shares: dict[int, list[float]] = {b: [] for b in batch_sizes}
    scores: dict[int, list[float]] = {}
    try:
        for b in batch_sizes:
            srm.batch_size = b
            srm.score_pairs(pairs[: max(b, 8)])  # warm-up at this batch size
            progress.step()
        # Repeats outermost: a burst of load from another process on a shared machine then hits
        # every batch size alike instead of skewing one of them.
        for _ in range(repeats):
            for b in batch_sizes:
                srm.batch_size = b
                timed_tok = _TimedTokenizer(saved_tok)
                srm.tokenizer = timed_tok
                try:
                    seconds, scores[b] = _timed(lambda: srm.score_pairs(pairs), srm.device)
                finally:
                    srm.tokenizer = saved_tok
                times[b].append(seconds)
                tok_shares[b].append(timed_tok.seconds / seconds)
                progress.step()
    finally:
        srm.batch_size, srm.tokenizer = saved_batch, saved_tok
    reference = scores[batch_sizes[0]]
    for b in batch_sizes:
        median = statistics.median(times[b])
        pad_sorted, _ = padding_overhead(lengths, b, sort=True)
        pad_unsorted, _ = padding_overhead(lengths, b, sort=False)
        result["batches"][b] = {
            "seconds_median": median, "spread": _spread(times[b]), "times": times[b],
            "candidates_per_s": len(pairs) / median, "ms_per_candidate": 1000 * median / len(pairs),
            "best_candidates_per_s": len(pairs) / min(times[b]),
            "padding_sorted": pad_sorted, "padding_unsorted": pad_unsorted,
            "tokenizer_share": statistics.median(tok_shares[b]),
            "useful_gflops": useful_flops / median / 1e9,
            "executed_gflops": _padded_flops(flop_model, lengths, b) / median / 1e9,
            "best_useful_gflops": useful_flops / min(times[b]) / 1e9,
            "max_abs_diff_vs_first": max(abs(x - y) for x, y in zip(scores[b], reference)),
        }
    return result


def add_peak(srm_result: dict[str, Any], peak_gflops: float) -> None:
    """Add to each batch size the fraction of the measured matmul peak that the SRM reached."""
    srm_result["peak_gflops"] = peak_gflops
    for v in srm_result["batches"].values():
        v["fraction_of_peak"] = v["useful_gflops"] / peak_gflops
        v["fraction_of_peak_best"] = v["best_useful_gflops"] / peak_gflops


def _clear_prefix_cache(generator) -> None:
    """Empty the generator's cache of prompt KV caches, if it keeps one (a private detail, benchmark only)."""
    kv = getattr(generator, "_prefix_kv", None)
    if kv is not None:
        kv.clear()


GENERATOR_MODES = ("naive", "cold", "shared", "same")
_MODE_HELP = {
    "naive": "one full forward of prompt + choice per choice",
    "cold": "score_choices with no cached prompt: one forward of the whole prompt, then the K choices",
    "shared": "score_choices on a new prompt whose few-shot part is cached (as in a search): the new tail only",
    "same": "score_choices on the prompt just scored (its whole KV cache is cached)",
}


def bench_generator(generator, prompts: list[str], choices: list[str], ks: Sequence[int], repeats: int,
                    naive_repeats: int, progress: _Progress) -> dict[str, Any]:
    """Time per call of ``score_choices`` (cold, shared prefix, same prompt) and of the naive way, per K.

    ``prompts[0]`` is the base prompt; each "shared" call takes the next of ``prompts[1:]`` (never
    seen before), so ``len(prompts)`` must be at least ``1 + repeats * len(ks) + 1``.
    """
    device = generator.device
    base = prompts[0]
    fresh = iter(prompts[1:])
    n_prompt = len(generator._encode_prompt(base, reserve=0))
    has_prefix_cache = hasattr(generator, "_prefix_kv")
    _clear_prefix_cache(generator)
    generator.score_choices(next(fresh), choices[:2])  # warm-up of both paths
    naive_score_choices(generator, base, choices[:1])
    progress.step()
    runs = {k: {m: [] for m in GENERATOR_MODES} for k in ks}
    outs: dict[int, dict[str, list[Candidate]]] = {k: {} for k in ks}
    last_shared: dict[int, str] = {}
    for r in range(max(repeats, naive_repeats)):  # interleaved, so load bursts hit every way alike
        for k in ks:
            subset, run = choices[:k], runs[k]
            if r < naive_repeats:
                seconds, outs[k]["naive"] = _timed(lambda: naive_score_choices(generator, base, subset), device)
                run["naive"].append(seconds)
                progress.step()
            if r < repeats:
                _clear_prefix_cache(generator)
                seconds, outs[k]["cold"] = _timed(lambda: generator.score_choices(base, subset), device)
                run["cold"].append(seconds)
                seconds, outs[k]["same"] = _timed(lambda: generator.score_choices(base, subset), device)
                run["same"].append(seconds)
                prompt = next(fresh)
                seconds, outs[k]["shared"] = _timed(lambda: generator.score_choices(prompt, subset), device)
                run["shared"].append(seconds)
                last_shared[k] = prompt
                progress.step()
    # The shared-prefix path against the naive way on its own prompt (the prefill is the same for every K).
    k0 = ks[0]
    shared_ref = naive_score_choices(generator, last_shared[k0], choices[:k0])
    shared_diff = max(abs(a.logprob - b.logprob) for a, b in zip(outs[k0]["shared"], shared_ref))
    shared_tokens = [len(generator._encode_prompt(p, reserve=0)) for p in prompts[1:]]
    base_ids = generator._encode_prompt(base, reserve=0)
    common = statistics.fmean(
        common_prefix_length(base_ids, generator._encode_prompt(p, reserve=0)) for p in prompts[1:])
    result: dict[str, Any] = {
        "prompt_tokens": n_prompt, "shared_prompt_tokens_mean": statistics.fmean(shared_tokens),
        "shared_prefix_tokens_mean": common, "has_prefix_cache": has_prefix_cache,
        "repeats": repeats, "naive_repeats": naive_repeats, "modes": dict(_MODE_HELP),
        "dtype": str(generator.dtype).removeprefix("torch."), "shared_vs_naive_k": k0,
        "shared_vs_naive_max_abs_logprob_diff": shared_diff, "ks": {},
    }
    for k in ks:
        run, out = runs[k], outs[k]
        for mode in ("cold", "same"):
            if [(c.text, c.num_tokens) for c in out[mode]] != [(c.text, c.num_tokens) for c in out["naive"]]:
                raise RuntimeError(f"K={k}: score_choices ({mode}) and the naive way disagree on texts or token counts")
        entry: dict[str, Any] = {"choice_tokens_mean": statistics.fmean(c.num_tokens for c in out["naive"])}
        for mode in GENERATOR_MODES:
            entry[mode] = {"median_s": statistics.median(run[mode]), "best_s": min(run[mode]),
                           "spread": _spread(run[mode]), "times": run[mode]}
        for mode in ("cold", "shared", "same"):
            entry[f"speedup_{mode}"] = entry["naive"]["median_s"] / entry[mode]["median_s"]
            entry[f"speedup_{mode}_best"] = entry["naive"]["best_s"] / entry[mode]["best_s"]
        entry["max_abs_logprob_diff"] = max(abs(a.logprob - b.logprob) for mode in ("cold", "same")
                                            for a, b in zip(out[mode], out["naive"]))
        entry["logprobs"] = {mode: [c.logprob for c in out[mode]] for mode in GENERATOR_MODES}
        result["ks"][k] = entry
    return result


# -- command line ------------------------------------------------------------------------------


def _int_list(text: str) -> list[int]:
    try:
        values = [int(x) for x in text.replace(",", " ").split()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected integers separated by commas, got {text!r}") from None
    if not values or any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f"expected integers >= 1, got {text!r}")
    return values


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m evals.throughput", formatter_class=HelpFormatter,
        description="Throughput of the embedded SRM (score_pairs) and generator (score_choices vs the naive "
                    "one-forward-per-choice way). Prints figures; asserts nothing.",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer pairs and repeats")
    p.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 16, 64], metavar="B,B,...",
                   help="SRM batch sizes (default: 1,4,16,64)")
    p.add_argument("--ks", type=_int_list, default=[4, 8, 16], metavar="K,K,...",
                   help="numbers of choices for score_choices (default: 4,8,16)")
    p.add_argument("--device", default="auto",
                   help="auto (default: CUDA when present, else CPU), cpu, cuda, cuda:1, ...")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    p.add_argument("--pairs", type=positive_int, default=None,
                   help="SRM pairs per timed call (default 128; 32 with --quick)")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="timed repeats of every measurement (default 5, naive generator 3, matmul 7; "
                        "1/1/3 with --quick)")
    p.add_argument("--prompt-tokens", type=positive_int, default=600,
                   help="largest few-shot prompt length in tokens (default: 600)")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads (default: torch's choice)")
    p.add_argument("--seed", type=int, default=0, help="seed of the procedural texts (default: 0)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def _quiet_transformers() -> None:
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.set_verbosity_error()
        hf_logging.disable_progress_bar()
    except ImportError:
        pass


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    n_pairs = args.pairs or (32 if args.quick else 128)
    srm_repeats = args.repeats or (1 if args.quick else 5)
    gen_repeats = args.repeats or (1 if args.quick else 5)
    naive_repeats = args.repeats or (1 if args.quick else 3)
    mm_repeats = args.repeats or (3 if args.quick else 7)
    mm_sizes = [1024, 2048]
    _quiet_transformers()

    from srm_agent.embedded import default_generator, default_srm

    start = time.perf_counter()
    load_start = time.perf_counter()
    srm = default_srm(args.device)
    srm_load = time.perf_counter() - load_start
    device = srm.device
    ctx = machine_context(device, srm.dtype)

    out = print
    out("srm-agent throughput" + (" (--quick)" if args.quick else ""))
    out("")
    out("Machine")
    out(f"  CPU          {ctx['cpu_model']} ({ctx['cpus_available']} logical CPUs available)")
    out(f"  torch        {ctx['torch']}, {ctx['torch_threads']} intra-op / {ctx['torch_interop_threads']} "
        f"inter-op threads; transformers {ctx['transformers']}; Python {ctx['python']}")
    out(f"  device       {ctx['device']}" + (f" ({ctx['gpu']})" if ctx["gpu"] else "") + f", SRM dtype {ctx['dtype']}")
    if ctx["load_average"] is not None:
        out(f"  load average {' '.join(f'{x:.2f}' for x in ctx['load_average'])} (1/5/15 min) before the run")
    out("")

    total_steps = (2 * len(mm_sizes) * (1 + mm_repeats) + len(args.batch_sizes) * (1 + srm_repeats)
                   + 1 + len(args.ks) * (gen_repeats + naive_repeats))  # generator: one step per way and repeat
    progress = _Progress(total_steps, enabled=not args.no_progress)
    out = progress.print
    try:
        # 1. Peak matmul FLOP/s in the SRM's dtype, with the same threads, before and after the SRM runs
        #    (the higher counts: a shared machine may be busy during one of them); 2. SRM throughput.
        progress.phase("matmul peak")
        mm_before = matmul_peak(mm_sizes, srm.dtype, device, mm_repeats, progress)
        progress.phase("SRM")
        pairs, n_states = make_srm_pairs(srm.tokenizer, n_pairs, args.seed)
        srm_res = bench_srm(srm, pairs, n_states, args.batch_sizes, srm_repeats, progress)
        srm_res["load_s"] = srm_load
        progress.phase("matmul peak")
        mm_after = matmul_peak(mm_sizes, srm.dtype, device, mm_repeats, progress)
        mm = {"dtype": mm_before["dtype"], "before": mm_before, "after": mm_after,
              "peak_gflops": max(mm_before["peak_gflops"], mm_after["peak_gflops"])}
        add_peak(srm_res, mm["peak_gflops"])
        out(f"Matmul peak ({mm['dtype']}, median of {mm_repeats}; measured before and after the SRM runs)")
        out(_table(["size", "before GFLOP/s", "best", "spread", "after GFLOP/s", "best", "spread"],
                   [[f"{n}x{n}", *(x for run in (mm_before, mm_after) for x in (
                       f"{run['sizes'][n]['gflops']:.1f}", f"{run['sizes'][n]['best_gflops']:.1f}",
                       f"{100 * run['sizes'][n]['spread']:.0f}%"))] for n in mm_sizes]))
        out(f"  peak: {mm['peak_gflops']:.1f} GFLOP/s (the highest median)")
        out("")

        tp = srm_res["tokens_per_pair"]
        source = "/".join(Path(str(getattr(srm.model.config, "_name_or_path", "") or "?")).parts[-2:])
        out(f"SRM score_pairs: {type(srm.model).__name__} from {source}, {srm_res['per_token_params'] / 1e6:.2f} M "
            f"non-embedding params, head {'trained' if srm_res['head_trained'] else 'untrained (same cost)'}")
        out(f"  {srm_res['pairs']} pairs over {n_states} states (shuffled); tokens per pair mean {tp['mean']:.1f} "
            f"(min {tp['min']}, max {tp['max']}; state {srm_res['state_tokens_mean']:.1f}, action "
            f"{srm_res['action_tokens_mean']:.1f}, 3 special)")
        out(f"  FLOPs per pair (mean): {srm_res['flops_per_pair_mean'] / 1e9:.2f} GFLOP "
            f"(2 x params x tokens + 4 x layers x tokens^2 x hidden); median of {srm_repeats}")
        rows = [[str(b), f"{v['candidates_per_s']:.1f}", f"{v['best_candidates_per_s']:.1f}",
                 f"{v['ms_per_candidate']:.1f}", f"{100 * v['spread']:.0f}%",
                 f"{100 * v['padding_sorted']:.1f}%", f"{100 * v['padding_unsorted']:.1f}%",
                 f"{100 * v['tokenizer_share']:.1f}%", f"{v['useful_gflops']:.1f}",
                 f"{100 * v['fraction_of_peak']:.0f}%", f"{v['max_abs_diff_vs_first']:.1e}"]
                for b, v in srm_res["batches"].items()]
        out(_table(["batch", "cand/s", "best", "ms/cand", "spread", "pad sorted", "pad unsorted", "tokenizer",
                    "GFLOP/s", "of peak", f"max|Δ| vs b={args.batch_sizes[0]}"], rows))
        out("  Medians; 'best' = fastest repeat; spread = (slowest - fastest) / median. GFLOP/s and 'of peak' "
            "count unpadded\n  tokens only. 'pad' = share of padded tokens with the length sorting score_pairs "
            "does and without it\n  (arrival order). 'tokenizer' = share of the time spent tokenising. max|Δ| = "
            "largest logit difference.")
        out("")

        # 3. Generator: score_choices vs the naive way.
        progress.phase("generator")
        load_start = time.perf_counter()
        generator = default_generator(args.device)
        gen_load = time.perf_counter() - load_start
        prompts, choices = make_fewshot_prompts(generator, args.prompt_tokens, max(args.ks), args.seed,
                                                n_prompts=2 + gen_repeats * len(args.ks))
        gen_res = bench_generator(generator, prompts, choices, args.ks, gen_repeats, naive_repeats, progress)
        gen_res["load_s"] = gen_load
        out(f"Generator score_choices: {type(generator.model).__name__} ({gen_res['dtype']}), few-shot prompt of "
            f"{gen_res['prompt_tokens']} tokens; median of {gen_repeats} (naive: {naive_repeats})")
        if not gen_res["has_prefix_cache"]:
            out("  (cannot clear the generator's prompt KV caches: 'cold' may be cached)" if hasattr(
                generator, "prefix_cache_size") else
                "  (this generator keeps no prompt KV caches between calls: cold, shared and same cost alike)")

        def cell(v: dict[str, float]) -> str:
            return f"{1000 * v['median_s']:.0f} [{1000 * v['best_s']:.0f}]"

        rows = [[str(k), f"{v['choice_tokens_mean']:.1f}", *(cell(v[m]) for m in GENERATOR_MODES),
                 *(f"{v[f'speedup_{m}']:.1f}x" for m in ("cold", "shared", "same")), f"{v['max_abs_logprob_diff']:.1e}"]
                for k, v in gen_res["ks"].items()]
        out(_table(["K", "choice tok", "naive ms", "cold ms", "shared ms", "same ms", "cold x", "shared x",
                    "same x", "max|Δ logp|"], rows))
        for mode in GENERATOR_MODES:
            out(f"  {mode + ':':8s}{_MODE_HELP[mode]}")
        out("  ms = time per call, median [best] of the repeats; 'x' = speed-up over naive (medians).")
        out(f"  shared prompts: {gen_res['shared_prompt_tokens_mean']:.0f} tokens on average, "
            f"{gen_res['shared_prefix_tokens_mean']:.0f} of them in common with a cached prompt.")
        out(f"  max|Δ logp| = largest difference of the summed log-probs, cold and same vs naive; shared vs naive "
            f"(K={gen_res['shared_vs_naive_k']}): {gen_res['shared_vs_naive_max_abs_logprob_diff']:.1e}.")
        out("")
    finally:
        progress.close()

    wall = time.perf_counter() - start
    ctx["load_average_after"] = _load_average()
    print(f"Load: SRM {srm_load:.1f} s, generator {gen_load:.1f} s; whole run {wall:.0f} s.")
    spreads = [v["spread"] for v in srm_res["batches"].values()] + [
        v[mode]["spread"] for v in gen_res["ks"].values() for mode in GENERATOR_MODES]
    before = ctx["load_average"]
    busy = device.type == "cpu" and before is not None and before[0] >= 1.0
    if max(spreads) > 0.3 or busy:
        print("Note: " + (f"repeats disagree by up to {100 * max(spreads):.0f}%" if max(spreads) > 0.3 else "")
              + ("; " if max(spreads) > 0.3 and busy else "")
              + (f"the load average was {before[0]:.2f} before the run" if busy else "")
              + ": other processes were using the CPU. The 'best' columns are the least disturbed figures; "
                "rerun on an idle machine for clean ones.")
    if args.json is not None:
        report = {"context": ctx, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "matmul": mm, "srm": srm_res, "generator": gen_res, "wall_s": wall}
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(report, indent=2) + "\n")
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
