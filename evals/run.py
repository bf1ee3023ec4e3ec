"""``python -m evals.run --bench blocksworld|gsm8k``: every method on the same problems, the 3E report.

Same problems, same generator, same seeds for every method; effectiveness (solved) and cost
(generator calls and tokens, SRM calls, cache hits, wall time) side by side. Results are
appended to ``results.jsonl`` as each problem finishes, so ``--resume`` continues a run.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srm_agent.console import positive_int, quiet_transformers, run_command
from srm_tasks import TaskSpec, add_domain_arguments, domain_names, domain_options, get_spec

# Method → search configuration. "bfs" methods are ToT's breadth-first search: a beam per level.
METHODS: dict[str, dict[str, Any]] = {
    "cot": {"strategy": "dfs", "evaluator": "none", "k": 1},
    "tot-bfs": {"strategy": "beam", "evaluator": "self_eval"},
    "tot-dfs": {"strategy": "dfs", "evaluator": "self_eval"},
    "rap-mcts": {"strategy": "mcts", "evaluator": "self_eval"},
    "srm-bfs": {"strategy": "beam", "evaluator": "srm"},
    "srm-dfs": {"strategy": "dfs", "evaluator": "srm"},
    "srm-mcts": {"strategy": "mcts", "evaluator": "srm"},
}
BASELINES = ("cot", "tot-bfs", "tot-dfs", "rap-mcts")
RUN_ONLY = ("resume", "plot", "debug", "out", "device", "redis_url")  # options that do not change results
SUMMED = ("prompt_tokens", "generated_tokens", "generator_calls", "srm_calls", "cache_hits", "wall_s")
log = logging.getLogger("evals.run")


class UsageError(Exception):
    """Bad arguments or data: one line, exit status 2."""


def load_bench(args: argparse.Namespace) -> tuple[TaskSpec, Any, list[Any]]:
    """The domain's spec, its task and the problems to run (after --offset and --limit)."""
    spec = get_spec(args.bench)
    options = bench_options(args, spec)
    task = spec.make_task(options)
    problems = spec.load_problems(options)
    problems = problems[args.offset: args.offset + args.limit if args.limit else None]
    if not problems:
        raise UsageError("no problems to run (check --data, --offset and --limit)")
    return spec, task, problems


def bench_options(args: argparse.Namespace, spec: TaskSpec) -> dict[str, Any]:
    """The options a domain reads: --data, --seed, --depth and the domain's own options."""
    return {"data": args.data, "seed": args.seed, "depth": args.depth, **domain_options(args, spec)}


def load_models(args: argparse.Namespace, methods: Sequence[str]):
    from srm_agent.embedded import default_generator, default_srm
    from srm_agent.generators import TransformersGenerator
    from srm_agent.srm import SpeculativeRewardModel

    generator = (TransformersGenerator.from_pretrained(args.generator, device=args.device) if args.generator
                 else default_generator(device=args.device))
    srm = None
    if any(METHODS[m]["evaluator"] == "srm" for m in methods):
        srm = SpeculativeRewardModel.from_pretrained(args.srm, device=args.device) if args.srm \
            else default_srm(device=args.device)
        if not srm.head_trained:
            print("note: the SRM's scoring head is untrained; srm-* results measure an untrained verifier "
                  "(pass --srm with a trained checkpoint)", file=sys.stderr)
    cache = None
    if args.redis_url:
        from srm_agent.cache import RedisScoreCache

        cache = RedisScoreCache(args.redis_url, namespace=f"srm-eval-{args.bench}")
    return generator, srm, cache


def search_options(args: argparse.Namespace, method: str, depth: int) -> dict[str, Any]:
    options = {"k": args.k, "max_depth": depth, "beam_width": args.beam, "mcts_iters": args.mcts_iters,
               "temperature": args.temperature, "max_expansions": args.max_expansions, "seed": args.seed,
               **METHODS[method]}
    if options["evaluator"] == "srm":
        options.update(alpha=args.alpha, mode=args.mode)
    return options


def read_results(path: Path) -> list[dict[str, Any]]:
    """Finished records; a torn last line (a run killed mid-write) is dropped and rewritten later."""
    if not path.exists():
        return []
    records = []
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            log.warning("%s:%d is not complete JSON; that problem will be run again", path, n)
    return records


def check_same_config(path: Path, config: dict[str, Any]) -> None:
    """A resumed run must search the same way; only the methods and the problem count may grow."""
    if not path.exists():
        return
    before = json.loads(path.read_text())
    changed = sorted(k for k in config if k not in ("methods", "limit") and before.get(k) != json.loads(
        json.dumps(config[k])))
    if changed:
        raise UsageError(f"--resume with different settings than {path}: {', '.join(changed)}")


def summarise(bench: str, config: dict[str, Any], records: list[dict[str, Any]], methods: Sequence[str]
              ) -> dict[str, Any]:
    out: dict[str, Any] = {"bench": bench, "config": config, "methods": {}}
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        row: dict[str, Any] = {"n": len(mine), "solved": sum(bool(r["solved"]) for r in mine)}
        row["accuracy"] = row["solved"] / row["n"] if mine else 0.0
        for key in SUMMED:
            total = sum(r["usage"].get(key, 0) for r in mine)
            row[key] = round(total, 3) if key == "wall_s" else int(total)
        out["methods"][method] = row
    return out


def table(summary: dict[str, Any]) -> str:
    """The 3E table: accuracy, then cost, with tokens as a ratio of the most expensive baseline."""
    rows = summary["methods"]
    tokens = {m: r["prompt_tokens"] + r["generated_tokens"] for m, r in rows.items()}
    baselines = [m for m in rows if m in BASELINES and tokens[m] > 0]
    reference = max(baselines, key=lambda m: tokens[m]) if baselines else None
    head = (f"{'method':<10} {'n':>4} {'solved':>6} {'acc':>6} {'gen calls':>9} {'prompt tok':>11} "
            f"{'gen tok':>8} {'tok ratio':>9} {'srm calls':>9} {'hits':>6} {'wall s':>8}")
    lines = [head, "-" * len(head)]
    for m, r in rows.items():
        ratio = f"{tokens[m] / tokens[reference]:.3f}" if reference else "-"
        lines.append(f"{m:<10} {r['n']:>4} {r['solved']:>6} {r['accuracy']:>6.3f} {r['generator_calls']:>9} "
                     f"{r['prompt_tokens']:>11} {r['generated_tokens']:>8} {ratio:>9} {r['srm_calls']:>9} "
                     f"{r['cache_hits']:>6} {r['wall_s']:>8.1f}")
    if reference:
        lines.append(f"tok ratio: generator tokens (prompt + generated) / those of {reference}, the most "
                     "expensive baseline")
    return "\n".join(lines)


def plot(summary: dict[str, Any], path: Path) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UsageError("--plot needs matplotlib: pip install matplotlib") from None
    points: dict[tuple[int, float], list[str]] = {}  # methods that cost and score the same share a marker
    for method, row in summary["methods"].items():
        points.setdefault((max(row["prompt_tokens"] + row["generated_tokens"], 1), row["accuracy"]), []).append(method)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for (tokens, accuracy), methods in points.items():  # a legend, as close points' labels would overlap
        ax.scatter(tokens, accuracy, s=60, marker="o" if methods[0].startswith("srm") else "s", label=", ".join(methods))
    ax.legend(loc="best", fontsize="small")
    ax.set_xscale("log")
    ax.set_xlabel("generator tokens (prompt + generated), log scale")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    sizes = sorted({row["n"] for row in summary["methods"].values()})
    ax.set_title(f"{summary['bench']}, {'/'.join(map(str, sizes))} problems: accuracy vs generator cost")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run_config(args: argparse.Namespace, spec: TaskSpec) -> dict[str, Any]:
    """The settings that decide results: every option but the run-only ones and other domains' options."""
    others = {o.dest for name in domain_names() for o in get_spec(name).options} - {o.dest for o in spec.options}
    return {key: value for key, value in sorted(vars(args).items()) if key not in RUN_ONLY and key not in others}


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from graphs.tree_search import build_tree_search

    methods = args.methods
    spec, task, problems = load_bench(args)
    out = Path(args.out)
    results_path, summary_path = out / "results.jsonl", out / "summary.json"
    config = run_config(args, spec)
    if results_path.exists() and not args.resume:
        raise UsageError(f"{results_path} exists: pass --resume to continue that run, or another --out")
    check_same_config(out / "config.json", config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(config, indent=2))
    finished = read_results(results_path)
    if results_path.exists():  # keep only whole records, so appending starts on a fresh line
        tmp = results_path.with_suffix(".jsonl.tmp")
        tmp.write_text("".join(json.dumps(r) + "\n" for r in finished))
        tmp.replace(results_path)
    done = {(r["id"], r["method"]) for r in finished}
    todo = [(p, m) for p in problems for m in methods if (p["id"], m) not in done]
    generator, srm, cache = load_models(args, methods)
    solved = {m: 0 for m in methods}
    seen = {m: 0 for m in methods}
    for record in finished:
        if record["method"] in seen:
            seen[record["method"]] += 1
            solved[record["method"]] += bool(record["solved"])
    graphs: dict[tuple[str, int], Any] = {}
    with results_path.open("a") as sink, tqdm(todo, desc=spec.name, unit="run", dynamic_ncols=True) as bar:
        for problem, method in bar:
            depth = spec.depth(problem, args.depth)
            if (method, depth) not in graphs:
                graphs[(method, depth)] = build_tree_search(task, generator, srm, cache=cache,
                                                            trace_dir=out / "traces",
                                                            **search_options(args, method, depth))
            final = graphs[(method, depth)].invoke({"problem": problem})
            result = final["result"]
            record = {"id": problem["id"], "method": method, "solved": result["solved"], "answer": result["answer"],
                      "failure": result["failure"], "usage": result["usage"], "trace": result.get("trace_path")}
            sink.write(json.dumps(record) + "\n")
            sink.flush()
            seen[method] += 1
            solved[method] += bool(result["solved"])
            bar.set_postfix({m: f"{solved[m]}/{seen[m]}" for m in methods if seen[m]}, refresh=False)
    summary = summarise(spec.name, config, read_results(results_path), methods)
    tmp = summary_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(summary, indent=2))
    tmp.replace(summary_path)
    print(table(summary))
    print(f"results: {results_path}\nsummary: {summary_path}")
    if args.plot:
        print(f"plot: {plot(summary, out / 'accuracy_vs_tokens.png')}")
    return summary


def _methods(text: str) -> list[str]:
    names = [m.strip() for m in text.split(",") if m.strip()]
    unknown = [m for m in names if m not in METHODS]
    if unknown or not names:
        raise argparse.ArgumentTypeError(f"unknown method(s) {', '.join(unknown) or '(none)'}; "
                                         f"choose from {', '.join(METHODS)}")
    return list(dict.fromkeys(names))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--bench", choices=domain_names(), default="blocksworld")
    p.add_argument("--methods", type=_methods, default=_methods("cot,tot-bfs,srm-bfs"),
                   help=f"comma-separated, from: {', '.join(METHODS)}")
    p.add_argument("--data", default=None,
                   help="; ".join(f"{name}: {get_spec(name).data_help}" for name in domain_names()))
    p.add_argument("--limit", type=positive_int, default=None, help="at most this many problems")
    p.add_argument("--offset", type=int, default=0, help="skip this many problems first")
    p.add_argument("--k", type=positive_int, default=4, help="candidates per expansion (paper: 4)")
    p.add_argument("--depth", type=positive_int, default=None,
                   help="search depth (default: the instance's optimal length for blocksworld, 5 for gsm8k)")
    p.add_argument("--beam", type=positive_int, default=10, help="beam width of the bfs methods (llm-reasoners: 10)")
    p.add_argument("--mcts-iters", type=positive_int, default=10, help="MCTS iterations (llm-reasoners: 10)")
    p.add_argument("--max-expansions", type=positive_int, default=60, help="expansion budget per search")
    p.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (paper: 0.8)")
    p.add_argument("--alpha", type=float, default=0.5, help="SR vs RC weight of the SRM score (paper: 0.5)")
    p.add_argument("--mode", choices=("stochastic", "threshold"), default="stochastic", help="SRM acceptance")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--generator", default=None, help="causal LM folder or hub id (default: embedded SmolLM2)")
    p.add_argument("--srm", default=None, help="SRM checkpoint (default: the embedded SRM)")
    p.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), help="shared SRM score cache")
    p.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when available)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<bench>-<time>)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its results.jsonl")
    p.add_argument("--plot", action="store_true", help="also write accuracy_vs_tokens.png")
    p.add_argument("--debug", action="store_true", help="show tracebacks")
    add_domain_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.resume and not args.out:
        parser.error("--resume needs --out (the folder of the run to continue)")
    args.out = args.out or f"runs/{args.bench}-{time.strftime('%Y%m%d-%H%M%S')}"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    if not args.debug:
        quiet_transformers()
    return run_command(lambda: run(args), debug=args.debug, usage_errors=(UsageError, ValueError),
                       on_interrupt=f"finished problems are in {args.out}/results.jsonl; continue with "
                                    f"--resume --out {args.out}")


if __name__ == "__main__":
    sys.exit(main())
