"""CPU generator backends side by side: ``python -m evals.generator_backends [--quick] [--no-server]``.

A benchmark that prints figures; it asserts nothing. On the embedded SmolLM2-135M, in one run:

- ``transformers``: the GGUF de-quantised to fp32 and run by torch (``default_generator``);
- ``llama.cpp``: the same GGUF run in-process by llama.cpp (``LlamaCppGenerator``, Q4_1 kernels);
- ``llama.cpp server``: the same GGUF behind ``python -m llama_cpp.server``, through
  ``OpenAICompatibleGenerator`` (construction probe timed separately).

For each, on Blocksworld prompts (RAP's few-shot plan prompt, ~600 tokens) with their legal
actions: ``score_choices`` on a new prompt (its few-shot prefix cached by the previous call, as in
a search) and on the prompt just scored; ``propose`` tokens/s (K samples, no stop string); and
how far its log-probs are from the transformers ones (nats per token, on the same choices, and on
the llama.cpp samples rescored). Backends take turns on each prompt, so load drift hits all alike.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from srm_agent.console import positive_int


def timed(call: Callable[[], Any]) -> tuple[float, Any]:
    started = time.perf_counter()
    out = call()
    return time.perf_counter() - started, out


def per_token_gaps(got, reference) -> list[float]:
    return [abs(a.logprob - b.logprob) / b.num_tokens for a, b in zip(got, reference)]


def run(args: argparse.Namespace) -> dict[str, Any]:
    from srm_agent.embedded import default_generator, embedded_generator_gguf
    from srm_agent.generators import OpenAICompatibleGenerator
    from srm_agent.generators.llama_cpp import LlamaCppGenerator, llama_cpp_server
    from srm_tasks.blocksworld import BlocksworldTask
    from srm_tasks.blocksworld.problems import generate_problems

    task = BlocksworldTask()
    states = [task.initial_state(p) for p in generate_problems(args.prompts, steps=(2, 6), seed=args.seed)]
    gguf = embedded_generator_gguf()
    backends: dict[str, Any] = {"transformers": default_generator(device="cpu"),
                                "llama.cpp": LlamaCppGenerator(gguf, n_threads=args.threads)}
    probe_s = None
    with ExitStack() as stack:
        if args.server:
            log = Path(tempfile.mkdtemp(prefix="llama-server-")) / "server.log"
            url, _ = stack.enter_context(llama_cpp_server(gguf, n_threads=args.threads, log_path=log))
            probe_s, backends["llama.cpp server"] = timed(lambda: OpenAICompatibleGenerator(url))
        names = list(backends)
        figures: dict[str, dict[str, list[float]]] = {
            n: {"score_new_s": [], "score_same_s": [], "propose_tok_s": [], "score_gap": [], "sample_gap": []}
            for n in names}
        for i, state in enumerate(states):
            prompt, actions = task.prompt(state), task.legal_actions(state)
            scored = {}
            for name in names:
                seconds, scored[name] = timed(lambda: backends[name].score_choices(prompt, actions))
                figures[name]["score_new_s"].append(seconds)
                seconds, _ = timed(lambda: backends[name].score_choices(prompt, actions))
                figures[name]["score_same_s"].append(seconds)
            for name in names:
                figures[name]["score_gap"] += per_token_gaps(scored[name], scored["transformers"])
            for name in names:
                seconds, proposed = timed(lambda: backends[name].propose(
                    prompt, args.k, temperature=0.8, max_new_tokens=args.max_new_tokens, seed=args.seed + i))
                figures[name]["propose_tok_s"].append(proposed.usage.generated_tokens / seconds)
                texts = [c.text for c in proposed if c.text.strip()]
                if texts:
                    check = backends["transformers"].score_choices(prompt, texts)
                    mine = [c for c in proposed if c.text.strip()]
                    figures[name]["sample_gap"] += [g for g, a, b in zip(per_token_gaps(mine, check), mine, check)
                                                    if a.num_tokens == b.num_tokens]
            print(f"prompt {i + 1}/{len(states)} done", file=sys.stderr)
    summary = {name: {"score_new_s": statistics.median(f["score_new_s"]),
                      "score_same_s": statistics.median(f["score_same_s"]),
                      "propose_tok_s": statistics.median(f["propose_tok_s"]),
                      "score_gap_max": max(f["score_gap"]), "score_gap_mean": statistics.fmean(f["score_gap"]),
                      "sample_gap_max": max(f["sample_gap"], default=float("nan"))}
               for name, f in figures.items()}
    return {"machine": {"cpu": platform.processor() or platform.machine(), "threads": args.threads,
                        "load_before": os.getloadavg()[0]},
            "setup": {"prompts": len(states), "k": args.k, "max_new_tokens": args.max_new_tokens,
                      "choices_per_prompt": statistics.fmean(len(task.legal_actions(s)) for s in states)},
            "server_probe_s": probe_s, "backends": summary}


def table(result: dict[str, Any]) -> str:
    base = result["backends"]["transformers"]
    lines = [f"{'backend':<18} {'score new':>10} {'score same':>10} {'propose tok/s':>13} {'vs torch':>9} "
             f"{'gap/token max':>13} {'mean':>7} {'samples max':>11}"]
    for name, r in result["backends"].items():
        speed = r["propose_tok_s"] / base["propose_tok_s"]
        lines.append(f"{name:<18} {r['score_new_s']:>9.2f}s {r['score_same_s']:>9.2f}s {r['propose_tok_s']:>13.1f} "
                     f"{speed:>8.2f}x {r['score_gap_max']:>13.4f} {r['score_gap_mean']:>7.4f} "
                     f"{r['sample_gap_max']:>11.4f}")
    if result["server_probe_s"] is not None:
        lines.append(f"server construction probe: {result['server_probe_s']:.1f} s")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m evals.generator_backends", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prompts", type=positive_int, default=6, help="Blocksworld prompts (default 6)")
    p.add_argument("--k", type=positive_int, default=4, help="samples per propose call (default 4)")
    p.add_argument("--max-new-tokens", type=positive_int, default=48, help="tokens per sample (default 48)")
    p.add_argument("--threads", type=positive_int, default=os.cpu_count() or 1, help="llama.cpp threads")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-server", dest="server", action="store_false", help="skip the llama.cpp server")
    p.add_argument("--quick", action="store_true", help="2 prompts, 16 tokens per sample")
    p.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = p.parse_args(argv)
    if args.quick:
        args.prompts, args.max_new_tokens = 2, 16
    from srm_agent.console import quiet_transformers

    quiet_transformers()
    result = run(args)
    result["machine"]["load_after"] = os.getloadavg()[0]
    print(table(result))
    print(f"load average {result['machine']['load_before']:.1f} before, {result['machine']['load_after']:.1f} after")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
