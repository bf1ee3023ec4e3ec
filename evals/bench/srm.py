"""SRM throughput: candidates/s of ``score_pairs`` per batch size, padding, tokenizer share, share of peak."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from evals.bench.machine import Progress, spread, table, timed


class TimedTokenizer:
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


def flop_model(model) -> tuple[int, int, int, int]:
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


def srm_flops(model_shape: tuple[int, int, int, int], tokens: int) -> float:
    """Forward FLOPs of one sequence: 2 x params x tokens + attention scores and values (4 L T^2 d)."""
    per_token, head, layers, hidden = model_shape
    return 2.0 * per_token * tokens + 4.0 * layers * tokens**2 * hidden + 2.0 * head


def _batches(lengths: Sequence[int], batch_size: int, *, sort: bool) -> list[list[int]]:
    order = sorted(range(len(lengths)), key=lengths.__getitem__) if sort else list(range(len(lengths)))
    return [[lengths[i] for i in order[start:start + batch_size]] for start in range(0, len(order), batch_size)]


def padding_overhead(lengths: Sequence[int], batch_size: int, *, sort: bool) -> tuple[float, int]:
    """Fraction of padded tokens, and the padded token count, when batching ``lengths`` in order or sorted."""
    padded = sum(max(chunk) * len(chunk) for chunk in _batches(lengths, batch_size, sort=sort))
    return (padded - sum(lengths)) / padded, padded


def _padded_flops(model_shape, lengths: Sequence[int], batch_size: int) -> float:
    return sum(len(chunk) * srm_flops(model_shape, max(chunk)) for chunk in _batches(lengths, batch_size, sort=True))


def bench_srm(srm, pairs: list[tuple[str, str]], n_states: int, batch_sizes: Sequence[int], repeats: int,
              progress: Progress) -> dict[str, Any]:
    """Throughput of ``srm.score_pairs(pairs)`` per batch size (add ``fraction_of_peak`` with :func:`add_peak`)."""
    tok = srm.tokenizer
    states, actions = [s for s, _ in pairs], [a for _, a in pairs]
    lengths = [len(x) for x in tok(states, actions, truncation="only_first", max_length=srm.max_length)["input_ids"]]
    state_tokens = [len(x) for x in tok(states, add_special_tokens=False)["input_ids"]]
    action_tokens = [len(x) for x in tok(actions, add_special_tokens=False)["input_ids"]]
    shape = flop_model(srm.model)
    useful_flops = sum(srm_flops(shape, n) for n in lengths)
    result: dict[str, Any] = {
        "pairs": len(pairs), "distinct_states": n_states, "repeats": repeats,
        "tokens_per_pair": {"mean": statistics.fmean(lengths), "min": min(lengths), "max": max(lengths)},
        "state_tokens_mean": statistics.fmean(state_tokens), "action_tokens_mean": statistics.fmean(action_tokens),
        "action_tokens_range": [min(action_tokens), max(action_tokens)],
        "max_length": srm.max_length, "head_trained": srm.head_trained,
        "per_token_params": shape[0], "head_params": shape[1],
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
                timed_tok = TimedTokenizer(saved_tok)
                srm.tokenizer = timed_tok
                try:
                    seconds, scores[b] = timed(lambda: srm.score_pairs(pairs), srm.device)
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
        result["batches"][b] = {
            "seconds_median": median, "spread": spread(times[b]), "times": times[b],
            "candidates_per_s": len(pairs) / median, "ms_per_candidate": 1000 * median / len(pairs),
            "best_candidates_per_s": len(pairs) / min(times[b]),
            "padding_sorted": padding_overhead(lengths, b, sort=True)[0],
            "padding_unsorted": padding_overhead(lengths, b, sort=False)[0],
            "tokenizer_share": statistics.median(tok_shares[b]),
            "useful_gflops": useful_flops / median / 1e9,
            "executed_gflops": _padded_flops(shape, lengths, b) / median / 1e9,
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


def print_srm(res: dict[str, Any], srm, out: Callable[[str], None]) -> None:
    tp = res["tokens_per_pair"]
    source = "/".join(Path(str(getattr(srm.model.config, "_name_or_path", "") or "?")).parts[-2:])
    out(f"SRM score_pairs: {type(srm.model).__name__} from {source}, {res['per_token_params'] / 1e6:.2f} M "
        f"non-embedding params, head {'trained' if res['head_trained'] else 'untrained (same cost)'}")
    out(f"  {res['pairs']} Blocksworld (state, legal action) pairs over {res['distinct_states']} states (shuffled); "
        f"tokens per pair mean {tp['mean']:.1f} (min {tp['min']}, max {tp['max']}; state "
        f"{res['state_tokens_mean']:.1f}, action {res['action_tokens_mean']:.1f}, 3 special)")
    out(f"  FLOPs per pair (mean): {res['flops_per_pair_mean'] / 1e9:.2f} GFLOP "
        f"(2 x params x tokens + 4 x layers x tokens^2 x hidden); median of {res['repeats']}")
    first = next(iter(res["batches"]))
    rows = [[str(b), f"{v['candidates_per_s']:.1f}", f"{v['best_candidates_per_s']:.1f}",
             f"{v['ms_per_candidate']:.1f}", f"{100 * v['spread']:.0f}%",
             f"{100 * v['padding_sorted']:.1f}%", f"{100 * v['padding_unsorted']:.1f}%",
             f"{100 * v['tokenizer_share']:.1f}%", f"{v['useful_gflops']:.1f}",
             f"{100 * v['fraction_of_peak']:.0f}%", f"{v['max_abs_diff_vs_first']:.1e}"]
            for b, v in res["batches"].items()]
    out(table(["batch", "cand/s", "best", "ms/cand", "spread", "pad sorted", "pad unsorted", "tokenizer",
               "GFLOP/s", "of peak", f"max|Δ| vs b={first}"], rows))
    out("  Medians; 'best' = fastest repeat; spread = (slowest - fastest) / median. GFLOP/s and 'of peak' "
        "count unpadded\n  tokens only. 'pad' = share of padded tokens with the length sorting score_pairs "
        "does and without it\n  (arrival order). 'tokenizer' = share of the time spent tokenising. max|Δ| = "
        "largest logit difference.")
    out("")
