"""The 3E report: accuracy and cost per method, each SRM search next to its twin; shard merging.

``python -m evals.report merge RUN_DIR... --out DIR`` joins the shards of one evaluation (run with
``evals.run --shard i/N`` on several machines, one Redis), or runs of other methods with the same settings,
into one ``results.jsonl`` and summary. ``python -m evals.report show RUN_DIR [--markdown]`` prints a run's
table again from its ``summary.json`` (``--markdown``: the form of the README's tables).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from evals.methods import METHODS, method_names
from srm_agent.search.usage import ROLES

SUMMED = ("prompt_tokens", "generated_tokens", "generator_calls", "srm_calls", "srm_scored", "cache_hits",
          "expansions", "invalid_steps", "judged", "rejected", "fallbacks", "srm_seconds", "wall_s")
FLOATS = ("srm_seconds", "wall_s")


class ReportError(Exception):
    """Bad report input (missing or mismatched runs): one line, exit status 2."""


def read_results(path: Path) -> tuple[list[dict[str, Any]], int]:
    """Whole records of a results file, and how many torn lines (a run killed mid-write) were dropped."""
    if not path.exists():
        return [], 0
    records, torn = [], 0
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            torn += 1
    return records, torn


def tokens(row: dict[str, Any]) -> int:
    return row["prompt_tokens"] + row["generated_tokens"]


def summarise(bench: str, config: dict[str, Any], records: list[dict[str, Any]], methods: Sequence[str],
              extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per method: accuracy, summed cost (with the split by role), and the twin's accuracy and token ratio."""
    out: dict[str, Any] = {"bench": bench, "config": config, **(extra or {}),
                           "code": sorted({r["code"] for r in records if r.get("code")}),
                           "srm": sorted({r["srm"] for r in records if r.get("srm")}), "methods": {}}
    for method in methods:
        mine = [r for r in records if r["method"] == method]
        row: dict[str, Any] = {"n": len(mine), "solved": sum(bool(r["solved"]) for r in mine),
                               "failures": sum(bool(r.get("failure")) for r in mine)}
        row["accuracy"] = row["solved"] / row["n"] if mine else 0.0
        for key in SUMMED:
            total = sum(r["usage"].get(key, 0) for r in mine)
            row[key] = round(total, 3) if key in FLOATS else int(total)
        row["by_role"] = {role: {part: sum(r["usage"].get(role, {}).get(part, 0) for r in mine)
                                 for part in ("calls", "prompt_tokens", "generated_tokens")} for role in ROLES}
        out["methods"][method] = row
    for method, row in out["methods"].items():
        twin = METHODS[method].twin if method in METHODS else None
        if twin in out["methods"] and out["methods"][twin]["n"] == row["n"]:
            base = out["methods"][twin]
            row.update(twin=twin, twin_accuracy=base["accuracy"],
                       tokens_vs_twin=round(tokens(row) / tokens(base), 4) if tokens(base) else None)
    return out


def table(summary: dict[str, Any]) -> str:
    """Accuracy and cost per method; an SRM or random search's tokens as a ratio of its twin's."""
    rows = summary["methods"]
    head = (f"{'method':<11} {'n':>4} {'solved':>6} {'acc':>6} {'twin':>9} {'twin acc':>8} {'gen calls':>9} "
            f"{'prompt tok':>11} {'gen tok':>8} {'eval tok':>9} {'tok/twin':>8} {'srm calls':>9} {'srm s':>7} "
            f"{'wall s':>8}")
    lines = [head, "-" * len(head)]
    for m, r in rows.items():
        twin = r.get("twin") or "-"
        twin_acc = f"{r['twin_accuracy']:.3f}" if r.get("twin") else "-"
        ratio = f"{r['tokens_vs_twin']:.3f}" if r.get("tokens_vs_twin") is not None else "-"
        evaluation = r["by_role"]["evaluation"]["prompt_tokens"] + r["by_role"]["evaluation"]["generated_tokens"]
        lines.append(f"{m:<11} {r['n']:>4} {r['solved']:>6} {r['accuracy']:>6.3f} {twin:>9} {twin_acc:>8} "
                     f"{r['generator_calls']:>9} {r['prompt_tokens']:>11} {r['generated_tokens']:>8} {evaluation:>9} "
                     f"{ratio:>8} {r['srm_calls']:>9} {r['srm_seconds']:>7.1f} {r['wall_s']:>8.1f}")
    lines.append("tok/twin: generator tokens (prompt + generated, every role) over those of the same search judged by "
                 "the generator itself; eval tok: the evaluation role's share")
    if summary.get("code"):
        lines.append("code: " + ", ".join(summary["code"]))
    if summary.get("srm"):
        lines.append("SRM: " + ", ".join(summary["srm"]))
    if any(r["failures"] for r in rows.values()):
        lines.append("failures: " + ", ".join(f"{m} {r['failures']}" for m, r in rows.items() if r["failures"]))
    return "\n".join(lines)


def markdown_table(summary: dict[str, Any]) -> str:
    """The same figures as ``table`` as a Markdown table, numbers with thousands separators."""
    lines = ["| method | solved | accuracy | twin | twin's accuracy | generator calls | generator tokens | "
             "evaluation tokens | tokens / twin | expansions per problem | SRM calls |",
             "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for m, r in summary["methods"].items():
        evaluation = r["by_role"]["evaluation"]["prompt_tokens"] + r["by_role"]["evaluation"]["generated_tokens"]
        twin = f"`{r['twin']}`" if r.get("twin") else "–"
        twin_acc = f"{r['twin_accuracy']:.2f}" if r.get("twin") else "–"
        ratio = f"{r['tokens_vs_twin']:.2f}" if r.get("tokens_vs_twin") is not None else "–"
        per_problem = f"{r['expansions'] / r['n']:.1f}" if r["n"] and r["expansions"] else "–"
        lines.append(f"| `{m}` | {r['solved']}/{r['n']} | {r['accuracy']:.2f} | {twin} | {twin_acc} | "
                     f"{r['generator_calls']:,} | {tokens(r):,} | {evaluation:,} | {ratio} | {per_problem} | "
                     f"{r['srm_calls']:,} |")
    return "\n".join(lines)


def show(run: Path, *, markdown: bool = False) -> dict[str, Any]:
    """Print a finished (or interrupted) run's table from its summary."""
    path = run / "summary.json"
    if not path.is_file():
        raise ReportError(f"{run}: no summary.json (not an evals.run output folder, or a run that wrote none yet)")
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        print(markdown_table(summary) if markdown else table(summary))
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ReportError(f"{path}: not an evals.run summary ({exc.__class__.__name__}: {exc})") from None
    return summary


def plot(summary: dict[str, Any], path: Path) -> Path:
    """Accuracy against generator tokens; each twin pair joined by a line."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ReportError("--plot needs matplotlib: pip install matplotlib") from None
    rows = summary["methods"]
    fig, ax = plt.subplots(figsize=(6.8, 4.4))
    for method, row in rows.items():
        if row.get("twin") in rows:
            base = rows[row["twin"]]
            ax.plot([max(tokens(base), 1), max(tokens(row), 1)], [base["accuracy"], row["accuracy"]], color="0.75",
                    zorder=1)
    markers = {"srm": "o", "random": "x", "cot": "^"}
    for method, row in rows.items():
        marker = markers.get(method.split("-")[0], "s")
        ax.scatter(max(tokens(row), 1), row["accuracy"], s=60, marker=marker, label=method, zorder=2)
    ax.legend(loc="best", fontsize="small", ncol=2)
    ax.set_xscale("log")
    ax.set_xlabel("generator tokens (prompt + generated), log scale")
    ax.set_ylabel("accuracy")
    ax.set_ylim(-0.05, 1.05)
    sizes = sorted({row["n"] for row in rows.values()})
    ax.set_title(f"{summary['bench']}, {'/'.join(map(str, sizes))} problems: grey lines join twins")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_summary(out: Path, summary: dict[str, Any]) -> Path:
    from srm_agent.fsio import atomic_write_text

    path = out / "summary.json"
    atomic_write_text(path, json.dumps(summary, indent=2))
    return path


# -- merging shards -------------------------------------------------------------------------------------

def merge(dirs: Sequence[Path], out: Path, *, make_plot: bool = False, complete_only: bool = False,
          methods: Sequence[str] | None = None) -> dict[str, Any]:
    """One evaluation from its shards or from runs of other methods: the same settings, every problem once
    (the first folder's record where two have one). ``complete_only`` keeps only the problems that every method
    has finished (a fair table from runs that were stopped at different points); ``methods`` keeps only those
    methods, in that order. A method scored by two different SRMs is refused."""
    configs = []
    records: dict[tuple[str, str], dict[str, Any]] = {}
    for d in dirs:
        path = d / "config.json"
        if not path.is_file():
            raise ReportError(f"{d}: no config.json (not an evals.run output folder)")
        config = json.loads(path.read_text(encoding="utf-8"))
        configs.append({k: v for k, v in config.items() if k not in ("shard", "methods")})
        for record in read_results(d / "results.jsonl")[0]:
            if methods is None or record["method"] in methods:
                records.setdefault((record["id"], record["method"]), record)
    if any(c != configs[0] for c in configs[1:]):
        changed = sorted({k for c in configs[1:] for k in {*c, *configs[0]} if c.get(k) != configs[0].get(k)})
        raise ReportError(f"the runs were made with different settings: {', '.join(changed)}")
    found = list(dict.fromkeys(r["method"] for r in records.values()))
    methods = [m for m in methods if m in found] if methods is not None else found
    for method in methods:
        scorers = sorted({r["srm"] for r in records.values() if r["method"] == method and r.get("srm")})
        if len(scorers) > 1:
            raise ReportError(f"{method} was scored by different SRMs in these runs ({', '.join(scorers)}): "
                              "leave the older run out, or keep only other methods with --methods")
    if complete_only:
        finished = {m: {pid for pid, method in records if method == m} for m in methods}
        common = set.intersection(*finished.values()) if finished else set()
        dropped = len({pid for pid, _ in records} - common)
        records = {key: r for key, r in records.items() if key[0] in common}
        print(f"--complete-only: {len(common)} problems finished by every method; {dropped} left out")
    out.mkdir(parents=True, exist_ok=True)
    from srm_agent.fsio import atomic_write_text

    atomic_write_text(out / "results.jsonl", "".join(json.dumps(r) + "\n" for r in records.values()))
    atomic_write_text(out / "config.json", json.dumps({**configs[0], "merged_from": [str(d) for d in dirs]}, indent=2))
    summary = summarise(configs[0].get("bench", "?"), configs[0], list(records.values()), methods)
    write_summary(out, summary)
    print(table(summary))
    if make_plot:
        print(f"plot: {plot(summary, out / 'accuracy_vs_tokens.png')}")
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    from srm_agent.console import HelpFormatter, run_command

    parser = argparse.ArgumentParser(prog="python -m evals.report", description=__doc__,
                                     formatter_class=HelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    m = sub.add_parser("merge", help="join the shards of one evaluation", formatter_class=HelpFormatter,
                       description="Join the output folders of "
                       "`evals.run --shard i/N` runs (same settings) into one results.jsonl and summary.")
    m.add_argument("runs", nargs="+", type=Path, help="the shards' --out folders")
    m.add_argument("--out", type=Path, required=True, help="the merged output folder")
    m.add_argument("--plot", action="store_true", help="also write accuracy_vs_tokens.png")
    m.add_argument("--complete-only", action="store_true",
                   help="keep only the problems that every method has finished")
    m.add_argument("--methods", type=method_names, default=None,
                   help="comma-separated: keep only these methods, in this order (default: all, as found)")
    m.add_argument("--debug", action="store_true", help="show tracebacks")
    s_ = sub.add_parser("show", help="print a run's table again", formatter_class=HelpFormatter,
                        description="Print the 3E table of an evals.run output folder from its summary.json.")
    s_.add_argument("run", type=Path, help="the run's --out folder")
    s_.add_argument("--markdown", action="store_true", help="a Markdown table (the README's form)")
    s_.add_argument("--debug", action="store_true", help="show tracebacks")
    args = parser.parse_args(argv)
    if args.command == "show":
        return run_command(lambda: show(args.run, markdown=args.markdown), debug=args.debug,
                           usage_errors=(ReportError,))
    return run_command(lambda: merge(args.runs, args.out, make_plot=args.plot, complete_only=args.complete_only,
                                     methods=args.methods),
                       debug=args.debug, usage_errors=(ReportError,))


if __name__ == "__main__":
    sys.exit(main())
