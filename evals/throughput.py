"""Throughput of the embedded SRM and generator: ``python -m evals.throughput [--quick]``.

A benchmark that prints figures; it asserts nothing. It measures, in one run:

1. SRM (``default_srm()``): candidates/s of ``score_pairs`` at several batch sizes on Blocksworld
   (state, legal action) pairs as a search shows them to the SRM, the padding overhead with and
   without length sorting, the tokenizer's share of the time, and the fraction of the machine's
   measured matmul FLOP/s that the SRM reaches (``evals.bench.srm``).
2. Generator (``default_generator()``, SmolLM2-135M): ``score_choices`` against one full forward per
   choice, cold, on a new prompt sharing a cached few-shot prefix, and on the prompt just scored
   (``evals.bench.generator``).
3. The machine: CPU model, torch version and threads, device, load average.

The texts come from the Blocksworld domain (``evals.bench.texts``): seeded, no data files read
unless ``--prompt-pool`` names one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import torch

from evals.bench.generator import MODES, bench_generator, print_generator
from evals.bench.machine import Progress, load_average, machine_context, matmul_peak, print_machine, print_matmul
from evals.bench.srm import add_peak, bench_srm, print_srm
from evals.bench.texts import plan_prompts, srm_pairs
from srm_agent.console import HelpFormatter, positive_int, quiet_transformers

MATMUL_SIZES = (1024, 2048)


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
        prog="python -m evals.throughput",
        description="Throughput of the embedded SRM (score_pairs) and generator (score_choices vs the naive "
                    "one-forward-per-choice way) on Blocksworld texts. Prints figures; asserts nothing.",
    )
    p.add_argument("--quick", action="store_true", help="a smoke run: fewer pairs and repeats")
    p.add_argument("--batch-sizes", type=_int_list, default=[1, 4, 16, 64], metavar="B,B,...",
                   help="SRM batch sizes; default: 1,4,16,64")
    p.add_argument("--ks", type=_int_list, default=[4, 8, 16], metavar="K,K,...",
                   help="numbers of choices for score_choices; default: 4,8,16")
    p.add_argument("--device", default="auto", help="auto (CUDA when present, else CPU; the default), cpu, cuda, "
                                                    "cuda:1, ...")
    p.add_argument("--json", type=Path, metavar="PATH", help="also write the figures as JSON here")
    p.add_argument("--pairs", type=positive_int, default=None,
                   help="SRM pairs per timed call; default: 128, or 32 with --quick")
    p.add_argument("--repeats", type=positive_int, default=None,
                   help="timed repeats of every measurement; default: 5, naive generator 3, matmul 7 "
                        "(1, 1 and 3 with --quick)")
    p.add_argument("--prompt-pool", type=Path, default=None, metavar="JSON",
                   help="a RAP prompt-pool JSON for the generator's few-shot prompts; default: the built-in pool")
    p.add_argument("--shots", type=positive_int, default=None,
                   help="few-shot examples per prompt; default: 4, or all of a smaller pool")
    p.add_argument("--threads", type=positive_int, default=None, help="torch intra-op threads; default: torch's choice")
    p.add_argument("--seed", type=int, default=0, help="seed of the problems and walks; default: 0")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    n_pairs = args.pairs or (32 if args.quick else 128)
    srm_repeats = gen_repeats = args.repeats or (1 if args.quick else 5)
    naive_repeats = args.repeats or (1 if args.quick else 3)
    mm_repeats = args.repeats or (3 if args.quick else 7)
    quiet_transformers()
    try:  # the inputs first: a bad pool file or too large a K fails before minutes of model loading
        pairs, n_states = srm_pairs(n_pairs, args.seed)
        prompts, choices = plan_prompts(2 + gen_repeats * len(args.ks), max(args.ks), args.seed,
                                        pool=args.prompt_pool, n_shots=args.shots)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

    from srm_agent.embedded import default_generator, default_srm

    start = time.perf_counter()
    srm = default_srm(args.device)
    srm_load = time.perf_counter() - start
    device = srm.device
    ctx = machine_context(device, srm.dtype)
    print("srm-agent throughput" + (" (--quick)" if args.quick else ""))
    print("")
    print_machine(ctx, print)

    total_steps = (2 * len(MATMUL_SIZES) * (1 + mm_repeats) + len(args.batch_sizes) * (1 + srm_repeats)
                   + 1 + len(args.ks) * (gen_repeats + naive_repeats))  # generator: one step per way and repeat
    progress = Progress(total_steps, enabled=not args.no_progress)
    out = progress.print
    try:
        # Peak matmul FLOP/s in the SRM's dtype, with the same threads, before and after the SRM runs
        # (the higher counts: a shared machine may be busy during one of them), then the SRM.
        progress.phase("matmul peak")
        mm_before = matmul_peak(MATMUL_SIZES, srm.dtype, device, mm_repeats, progress)
        progress.phase("SRM")
        srm_res = bench_srm(srm, pairs, n_states, args.batch_sizes, srm_repeats, progress)
        srm_res["load_s"] = srm_load
        progress.phase("matmul peak")
        mm_after = matmul_peak(MATMUL_SIZES, srm.dtype, device, mm_repeats, progress)
        mm = {"dtype": mm_before["dtype"], "before": mm_before, "after": mm_after,
              "peak_gflops": max(mm_before["peak_gflops"], mm_after["peak_gflops"])}
        add_peak(srm_res, mm["peak_gflops"])
        print_matmul(mm, mm_repeats, out)
        print_srm(srm_res, srm, out)

        progress.phase("generator")
        load_start = time.perf_counter()
        generator = default_generator(args.device)
        gen_load = time.perf_counter() - load_start
        gen_res = bench_generator(generator, prompts, choices, args.ks, gen_repeats, naive_repeats, progress)
        gen_res["load_s"] = gen_load
        print_generator(gen_res, generator, out)
    finally:
        progress.close()

    wall = time.perf_counter() - start
    ctx["load_average_after"] = load_average()
    print(f"Load: SRM {srm_load:.1f} s, generator {gen_load:.1f} s; whole run {wall:.0f} s.")
    spreads = [v["spread"] for v in srm_res["batches"].values()] + [
        v[mode]["spread"] for v in gen_res["ks"].values() for mode in MODES]
    before = ctx["load_average"]
    busy = device.type == "cpu" and before is not None and before[0] >= 1.0
    if max(spreads) > 0.3 or busy:
        print("Note: " + (f"repeats disagree by up to {100 * max(spreads):.0f}%" if max(spreads) > 0.3 else "")
              + ("; " if max(spreads) > 0.3 and busy else "")
              + (f"the load average was {before[0]:.2f} before the run" if busy else "")
              + ": other processes were using the CPU. The 'best' columns are the least disturbed figures; "
                "rerun on an idle machine for clean ones.")
    if args.json is not None:
        from srm_agent.fsio import atomic_write_text

        report = {"context": ctx, "args": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
                  "matmul": mm, "srm": srm_res, "generator": gen_res, "wall_s": wall}
        atomic_write_text(args.json, json.dumps(report, indent=2) + "\n")
        print(f"Figures written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
