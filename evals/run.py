"""``python -m evals.run --bench blocksworld|gsm8k``: every method on the same problems, the 3E report.

Same problems, generator and seeds for every method; effectiveness (solved) and cost (generator calls and
tokens split by role, SRM calls and seconds, wall time) side by side, each SRM search next to its twin:
the same search judged by the generator itself (see ``evals.methods``). Results are appended to
``results.jsonl`` as each search finishes, so ``--resume`` continues a run; ``--concurrency N`` runs N
searches at once (against a server, say); ``--shard i/N`` runs every N-th problem, and
``python -m evals.report merge`` joins the shards.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any

from evals.methods import METHODS, NoisySRM, SearchSettings, method_names, search_kwargs
from evals.report import ReportError, plot, read_results, summarise, table, write_summary
from srm_agent.console import HelpFormatter, option_hint, positive_int, quiet_transformers, run_command
from srm_tasks import TaskSpec, add_domain_arguments, domain_names, domain_options, get_spec

# The shared data beside a checkout: llm-reasoners' prompts are the evaluation's default where they are there.
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
RAP_POOL = SHARED_DATA / "blocksworld" / "llm-reasoners" / "prompts" / "pool_prompt_v1.json"
DEFAULT_PROMPTS = {"blocksworld": RAP_POOL, "gsm8k": SHARED_DATA / "gsm8k" / "llm-reasoners-rap"}
# Options that do not change results, so a resumed run may change them.
RUN_ONLY = ("resume", "plot", "debug", "out", "device", "redis_url", "concurrency", "methods", "limit", "shard")
log = logging.getLogger("evals.run")


class UsageError(ReportError):
    """Bad arguments or data: one line, exit status 2."""


def bench_options(args: argparse.Namespace, spec: TaskSpec) -> dict[str, Any]:
    """What the domain's functions read: its own options (``--prompts`` resolved for this bench), data, seed, depth."""
    if getattr(args, "prompts", "built-in") is None:
        shared = DEFAULT_PROMPTS.get(spec.name)
        # relative to the working directory, as --data is given: the recorded setting is the same on every machine
        args.prompts = os.path.relpath(shared) if shared is not None and shared.exists() else "built-in"
    return {"data": args.data, "seed": args.seed, "depth": args.depth, **domain_options(args, spec)}


def load_bench(args: argparse.Namespace) -> tuple[TaskSpec, Any, list[Any]]:
    """The domain's spec, its task and the problems to run (after --offset, --limit and --shard)."""
    spec = get_spec(args.bench)
    options = bench_options(args, spec)
    try:
        task = spec.make_task(options)
        problems = spec.load_problems(options)
    except (ValueError, OSError, RuntimeError) as exc:
        hint = f" (pass --data: {spec.data_help})" if args.data is None else ""
        raise UsageError(f"{exc}{hint}") from None
    problems = problems[args.offset: args.offset + args.limit if args.limit else None]
    index, count = args.shard
    problems = problems[index::count]
    if not problems:
        raise UsageError("no problems to run (check --data, --offset, --limit and --shard)")
    return spec, task, problems


def settings_of(args: argparse.Namespace) -> SearchSettings:
    values = {f.name: getattr(args, f.name) for f in fields(SearchSettings) if f.name != "consistency"}
    return SearchSettings(**values, consistency=args.consistency == "on")


def load_models(args: argparse.Namespace, methods: Sequence[str]):
    from srm_agent.sources import model_source

    needs_srm = any(METHODS[m].evaluator == "srm" for m in methods)
    from srm_agent.generators.spec import SERVER_PREFIX, generator_from_spec

    with option_hint("--generator", "the embedded SmolLM2-135M-Instruct"):  # a bad path fails before torch loads
        if args.generator and not args.generator.startswith(SERVER_PREFIX) and args.generator != "embedded":
            model_source(args.generator, "causal LM")
    with option_hint("--srm", "the shipped Blocksworld SRM"):
        if needs_srm and args.srm:
            model_source(args.srm, "SRM checkpoint")

    from srm_agent.embedded import default_srm
    from srm_agent.srm import SpeculativeRewardModel

    with option_hint("--generator", "the embedded SmolLM2-135M-Instruct"):
        generator = generator_from_spec(args.generator, device=args.device)
    srm = None
    if needs_srm:
        with option_hint("--srm", "the shipped Blocksworld SRM"):
            srm = SpeculativeRewardModel.from_pretrained(args.srm, device=args.device) if args.srm \
                else default_srm(device=args.device)
        if not srm.head_trained:
            print("note: the SRM's scoring head is untrained; srm-* results measure an untrained verifier "
                  "(pass --srm with a trained checkpoint)", file=sys.stderr)
        if args.srm_noise:
            srm = NoisySRM(srm, args.srm_noise, seed=args.seed)
    cache = None
    if args.redis_url:
        from srm_agent.cache import RedisScoreCache

        cache = RedisScoreCache(args.redis_url, namespace=f"srm-eval-{args.bench}")
    return generator, srm, cache


def run_config(args: argparse.Namespace, spec: TaskSpec) -> dict[str, Any]:
    """The settings that decide results: every option but the run-only ones and other domains' options."""
    others = {o.dest for name in domain_names() for o in get_spec(name).options} - {o.dest for o in spec.options}
    return json.loads(json.dumps({key: value for key, value in sorted(vars(args).items())
                                  if key not in RUN_ONLY and key not in others}))


def check_same_config(path: Path, config: dict[str, Any], defaults: dict[str, Any]) -> None:
    """A resumed run must search the same way. A setting the earlier run did not record (an option added since)
    counts as its default."""
    if not path.exists():
        return
    before = json.loads(path.read_text(encoding="utf-8"))
    changed = sorted(k for k in config if before.get(k, defaults.get(k)) != config[k])
    if changed:
        raise UsageError(f"--resume with different settings than {path}: {', '.join(changed)}")


def code_version() -> str | None:
    """The commit whose code ran, marked ``+changes`` where the search's code differs from it; kept in every
    record, so a table joined from runs of several sessions says which code produced each row."""
    root = Path(__file__).resolve().parents[1]

    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, check=True).stdout

    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        changed = git("status", "--porcelain", "--untracked-files=no", "--", "srm_agent", "srm_tasks", "evals")
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an installed copy): nothing to record
    return commit + ("+changes" if changed.strip() else "")


def check_same_srm(finished: Sequence[dict[str, Any]], version: str, where: Path) -> None:
    """A resumed run's SRM searches must be scored by the SRM that scored the finished ones."""
    others = sorted({r["srm"] for r in finished if r.get("srm") not in (None, version)})
    if others:
        raise UsageError(f"{where}: its SRM searches were scored by SRM {', '.join(others)}, this run's SRM is "
                         f"{version}: pass another --out, or --srm with that checkpoint")


def finished_records(results_path: Path) -> list[dict[str, Any]]:
    """Finished records; a torn last line (a run killed mid-write) is dropped (its search runs again and
    rewrites its trace under the same name) and the file rewritten whole, so appending starts on a fresh line."""
    records, torn = read_results(results_path)
    if torn:
        log.warning("%s: %d incomplete line(s) dropped; those searches will run again", results_path, torn)
    if results_path.exists():
        from srm_agent.fsio import atomic_write_text

        atomic_write_text(results_path, "".join(json.dumps(r) + "\n" for r in records))
    return records


def run(args: argparse.Namespace) -> dict[str, Any]:
    from tqdm import tqdm

    from srm_agent.search import FolderSink, build_tree_search

    methods = args.methods
    spec, task, problems = load_bench(args)
    out = Path(args.out)
    results_path = out / "results.jsonl"
    config = run_config(args, spec)
    if results_path.exists() and not args.resume:
        raise UsageError(f"{results_path} exists: pass --resume to continue that run, or another --out")
    check_same_config(out / "config.json", config, run_config(build_parser().parse_args([]), spec))
    out.mkdir(parents=True, exist_ok=True)
    from srm_agent.fsio import atomic_write_text

    atomic_write_text(out / "config.json", json.dumps(config, indent=2))
    finished = finished_records(results_path)
    done = {(r["id"], r["method"]) for r in finished}
    todo = [(p, m) for p in problems for m in methods if (p["id"], m) not in done]
    generator, srm, cache = load_models(args, methods)
    # The scorer's own fingerprint (weights, config, vocabulary, window; noise too): what the score cache keys by.
    scorer = srm.fingerprint if srm is not None else None
    if scorer is not None:
        check_same_srm(finished, scorer, results_path)
    world = None
    if args.world_model != "exact":
        if args.world_model not in spec.world_models:
            raise UsageError(f"--world-model {args.world_model}: {spec.name} offers "
                             f"{', '.join(['exact', *spec.world_models])}")
        try:
            world = spec.world_models[args.world_model](generator, {"prompts": getattr(args, "prompts", None)})
        except ValueError as exc:
            raise UsageError(f"--world-model {args.world_model}: {exc}") from None
    settings = settings_of(args)
    code = code_version()
    options = {**bench_options(args, spec), "k": settings.k}
    provenance = dict(task.provenance()) if hasattr(task, "provenance") else {}

    def build(method: str, depth: int, **extra: Any):
        """The method's search as the domain runs it (its own task and world model, where it has them)."""
        kwargs = spec.configure_method(METHODS[method].family, search_kwargs(method, settings, depth), options)
        make_world, method_task = kwargs.pop("world", None), kwargs.pop("task", task)
        if method_task is not task and hasattr(method_task, "provenance"):
            provenance.update(method_task.provenance())
        return build_tree_search(method_task, generator, srm,
                                 world=make_world(generator) if make_world else world, **kwargs, **extra)

    for method in methods:  # a bad setting (alpha 2, say) is a usage error before any search runs
        try:
            build(method, args.depth or spec.default_depth)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
    sink = FolderSink(out / "traces")
    graphs: dict[tuple[str, int], Any] = {}
    lock = threading.Lock()
    solved = {m: 0 for m in methods}
    seen = {m: 0 for m in methods}
    for record in finished:
        if record["method"] in seen:
            seen[record["method"]] += 1
            solved[record["method"]] += bool(record["solved"])

    def graph_for(method: str, depth: int):
        with lock:
            if (method, depth) not in graphs:
                graphs[(method, depth)] = build(method, depth, cache=cache, trace=sink)
            return graphs[(method, depth)]

    def search(problem: Any, method: str) -> dict[str, Any]:
        depth = spec.depth(problem, args.depth)
        result = graph_for(method, depth).invoke({"problem": problem})["result"]
        return {"id": problem["id"], "method": method, "depth": depth, "solved": result["solved"],
                "answer": result["answer"], "failure": result["failure"], "usage": result["usage"],
                "trace": result.get("trace_path"), "code": code,
                **({"srm": scorer} if METHODS[method].evaluator == "srm" else {})}

    with results_path.open("a", encoding="utf-8") as results, \
            tqdm(total=len(todo), desc=spec.name, unit="search", dynamic_ncols=True) as bar, \
            ThreadPoolExecutor(max_workers=args.concurrency) as pool:
        def record(entry: dict[str, Any]) -> None:
            results.write(json.dumps(entry) + "\n")
            results.flush()
            seen[entry["method"]] += 1
            solved[entry["method"]] += bool(entry["solved"])
            bar.set_postfix({m: f"{solved[m]}/{seen[m]}" for m in methods if seen[m]}, refresh=False)
            bar.update()

        pending: set[Any] = set()
        queue = iter(todo)
        try:
            while True:
                while len(pending) < args.concurrency and (item := next(queue, None)) is not None:
                    pending.add(pool.submit(search, *item))
                if not pending:
                    break
                ready, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in ready:
                    record(future.result())
        except BaseException:
            for future in pending:
                future.cancel()
            raise
    records = read_results(results_path)[0]
    extra = {"provenance": provenance,
             "settings": asdict(settings), "shard": list(args.shard)}
    summary = summarise(spec.name, config, [r for r in records if r["method"] in methods], methods, extra)
    summary_path = write_summary(out, summary)
    print(table(summary))
    print(f"results: {results_path}\nsummary: {summary_path}")
    if args.plot:
        print(f"plot: {plot(summary, out / 'accuracy_vs_tokens.png')}")
    return summary


def _shard(text: str) -> tuple[int, int]:
    index, _, count = text.partition("/")
    try:
        pair = (int(index), int(count))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected i/N (e.g. 0/4), got {text!r}") from None
    if not 0 <= pair[0] < pair[1]:
        raise argparse.ArgumentTypeError(f"need 0 <= i < N, got {text!r}")
    return pair


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m evals.run", description=__doc__,
                                formatter_class=HelpFormatter)
    p.add_argument("--bench", choices=domain_names(), default="blocksworld", help="the domain (default: blocksworld)")
    p.add_argument("--methods", type=method_names, default=method_names("cot,tot-bfs,srm-bfs"),
                   help=f"comma-separated, from: {', '.join(METHODS)} (default: cot,tot-bfs,srm-bfs)")
    p.add_argument("--data", default=None,
                   help="; ".join(f"{name}: {get_spec(name).data_help}" for name in domain_names()))
    p.add_argument("--limit", type=positive_int, default=None, help="at most this many problems")
    p.add_argument("--offset", type=int, default=0, help="skip this many problems first")
    p.add_argument("--shard", type=_shard, default=(0, 1), metavar="i/N",
                   help="run every N-th problem from the i-th (0-based); join shards with python -m evals.report merge")
    search = p.add_argument_group("search (every method, so twins differ only in the evaluator)")
    search.add_argument("--proposals", choices=("enumerate", "sample"), default="enumerate",
                        help="enumerate: the task's legal actions scored in one shared-prefix forward; sample: "
                             "free-text samples at --temperature, as ToT proposes (default: enumerate)")
    search.add_argument("--goal-test", choices=("every-step", "end"), default="every-step",
                        help="every-step: stop at the first plan that reaches the goal; end: judge only the "
                             "search's output, as ToT does (default: every-step)")
    search.add_argument("--world-model", default="exact",
                        help="exact: the domain's simulator; llm: RAP's world model, the generator predicts each "
                             "state (Blocksworld) (default: exact)")
    search.add_argument("--k", type=positive_int, default=4, help="candidates per expansion (paper: 4; default: 4)")
    search.add_argument("--depth", type=positive_int, default=None,
                        help="search depth (default: the instance's optimal length for blocksworld, 5 for gsm8k)")
    search.add_argument("--beam", type=positive_int, default=10, help="beam width of *-bfs (llm-reasoners: 10)")
    search.add_argument("--dfs-states", type=positive_int, default=10,
                        help="states *-dfs may visit (llm-reasoners: total_states=10)")
    search.add_argument("--dfs-per-state", type=positive_int, default=3,
                        help="children *-dfs follows per state (llm-reasoners: max_per_state=3)")
    search.add_argument("--mcts-iters", type=positive_int, default=10, help="iterations of *-mcts (llm-reasoners: 10)")
    search.add_argument("--max-expansions", type=positive_int, default=None,
                        help="a cap on expansions per search (default: none; the strategies bound themselves)")
    search.add_argument("--temperature", type=float, default=0.8, help="sampling temperature (paper: 0.8)")
    search.add_argument("--alpha", type=float, default=0.5, help="SR vs RC weight of the SRM score (paper: 0.5)")
    search.add_argument("--mode", choices=("stochastic", "threshold"), default="stochastic",
                        help="SRM acceptance (default: stochastic)")
    search.add_argument("--ratio", choices=("srm_over_llm", "llm_over_srm"), default="srm_over_llm",
                        help="SR = q/p (srm_over_llm), or the literal p/q reading (default: srm_over_llm)")
    search.add_argument("--consistency", choices=("on", "off"), default="on",
                        help="rank accepted candidates by SR**alpha * RC**(1-alpha) (on), or by SR alone (off)")
    search.add_argument("--srm-noise", type=float, default=0.0, metavar="SIGMA",
                        help="add Gaussian noise of this standard deviation to the SRM's logits (an ablation)")
    search.add_argument("--seed", type=int, default=0, help="seeds problems, prompts and searches (default: 0)")
    models = p.add_argument_group("models and run")
    models.add_argument("--generator", default=None, metavar="SPEC",
                        help="'embedded' (default, SmolLM2-135M-Instruct), a causal LM folder or hub id (in-process), "
                             "or openai:MODEL@URL for an OpenAI-compatible server (vLLM, llama.cpp)")
    models.add_argument("--srm", default=None,
                        help="an SRM checkpoint folder (default: the shipped srm_agent/checkpoints/blocksworld-srm)")
    models.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                        help="share SRM scores across processes and runs through this Redis (default: $REDIS_URL; "
                             "unset: no shared cache)")
    models.add_argument("--device", default=None, help="cpu, cuda, … (default: CUDA when available)")
    models.add_argument("--concurrency", type=positive_int, default=1, help="searches in flight at once (default: 1)")
    models.add_argument("--out", default=None, help="output folder (default: runs/<bench>-<time>)")
    models.add_argument("--resume", action="store_true", help="continue the run in --out from its results.jsonl")
    models.add_argument("--plot", action="store_true", help="also write accuracy_vs_tokens.png")
    models.add_argument("--debug", action="store_true", help="show tracebacks")
    add_domain_arguments(p, prompts=None)  # None: llm-reasoners' prompts for the bench where there, else built-in
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
    return run_command(lambda: run(args), debug=args.debug, usage_errors=(ReportError,),
                       on_interrupt=f"finished searches are in {args.out}/results.jsonl; continue with "
                                    f"--resume --out {args.out}")


if __name__ == "__main__":
    sys.exit(main())
