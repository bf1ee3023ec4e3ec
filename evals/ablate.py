"""``python -m evals.ablate``: the paper's checks of the rule, each a variant of one ``srm-bfs`` evaluation.

Variants: alpha in {0, 0.25, 0.5, 0.75, 1}; reward consistency off (score = SR); the ratio read literally (p/q);
other SRMs in place of the evaluated one (``--compare-srm NAME=PATH``: a stage-1 SRM against SRM+, or the
untrained head); the SRM with Gaussian noise on its logits (sigma 0.5, 1, 2; the base row is sigma 0). Each runs
``python -m evals.run`` into a folder of its own under ``--out`` (so ``--resume`` continues any of them), and
the table gives accuracy, the share of judged candidates rejected, the share of expansions where the rule fell
back to the residual, and generator tokens.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from srm_agent.console import HelpFormatter, named_path, run_command

BASE = "alpha=0.5"


def variants(compare: Sequence[tuple[str, str]] = ()) -> dict[str, list[str]]:
    """Variant name -> the evals.run arguments that make it (the base is the default rule with the run's SRM)."""
    out = {f"alpha={a:g}": ["--alpha", str(a)] for a in (0.0, 0.25, 0.5, 0.75, 1.0)}
    out["consistency off"] = ["--consistency", "off"]
    out["ratio p/q"] = ["--ratio", "llm_over_srm"]
    for name, path in compare:
        out[name] = ["--srm", path]
    for sigma in (0.5, 1.0, 2.0):
        out[f"noise sigma={sigma:g}"] = ["--srm-noise", str(sigma)]
    return out


def _compared_srm(text: str) -> tuple[str, str]:
    """``NAME=PATH`` whose name is not already a variant's."""
    name, path = named_path(text)
    if name in variants():
        raise argparse.ArgumentTypeError(f"{name!r} is already a variant's name")
    return name, path


def folder_name(variant: str) -> str:
    return variant.replace(" ", "-").replace("=", "").replace("/", "over")


def row(summary: dict[str, Any]) -> dict[str, Any]:
    r = summary["methods"]["srm-bfs"]
    return {"n": r["n"], "solved": r["solved"], "accuracy": r["accuracy"],
            "rejection_rate": r["rejected"] / r["judged"] if r["judged"] else 0.0,
            "fallback_rate": r["fallbacks"] / r["expansions"] if r["expansions"] else 0.0,
            "generator_tokens": r["prompt_tokens"] + r["generated_tokens"], "expansions": r["expansions"]}


def table(rows: dict[str, dict[str, Any]]) -> str:
    head = f"{'variant':<18} {'n':>4} {'solved':>6} {'acc':>6} {'rejected':>8} {'fallback':>8} {'gen tokens':>11}"
    lines = [head, "-" * len(head)]
    for name, r in rows.items():
        lines.append(f"{name:<18} {r['n']:>4} {r['solved']:>6} {r['accuracy']:>6.3f} {r['rejection_rate']:>8.3f} "
                     f"{r['fallback_rate']:>8.3f} {r['generator_tokens']:>11}")
    lines.append("rejected: share of judged candidates the rule rejected; fallback: share of expansions where it "
                 "rejected all and took the residual's best")
    return "\n".join(lines)


def plot(rows: dict[str, dict[str, Any]], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(rows)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=False)
    axes[0].barh(names, [rows[n]["accuracy"] for n in names], color="#2f9e44")
    axes[0].set_xlabel("accuracy")
    axes[0].set_xlim(0, 1)
    axes[1].barh(names, [rows[n]["rejection_rate"] for n in names], color="#e03131", label="rejected")
    axes[1].barh(names, [rows[n]["fallback_rate"] for n in names], color="#1864ab", alpha=0.6, label="fallback")
    axes[1].set_xlabel("share")
    axes[1].set_xlim(0, 1)
    axes[1].legend(loc="lower right", fontsize="small")
    axes[1].set_yticklabels([])
    fig.suptitle("srm-bfs under the rule's ablations")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def run(args: argparse.Namespace, passthrough: list[str]) -> dict[str, dict[str, Any]]:
    from evals import run as evals_run

    out = Path(args.out)
    rows = {}
    for name, extra in variants(args.compare_srm).items():
        folder = out / folder_name(name)
        argv = ["--methods", "srm-bfs", "--out", str(folder), *passthrough, *extra]
        if (folder / "results.jsonl").exists():
            argv.append("--resume")
        print(f"== {name}: python -m evals.run {' '.join(argv)}", flush=True)
        code = evals_run.main(argv)
        if code:
            raise SystemExit(code)
        rows[name] = row(json.loads((folder / "summary.json").read_text(encoding="utf-8")))
    print(table(rows))
    (out / "ablation.json").write_text(json.dumps(rows, indent=2), encoding="utf-8")
    print(f"plot: {plot(rows, out / 'ablation.png')}")
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.ablate", description=__doc__, formatter_class=HelpFormatter,
                                     epilog="Any other option goes to every evals.run, e.g. --data SPLIT --limit 40.")
    parser.add_argument("--out", required=True, help="a folder for the variants' runs and the table")
    parser.add_argument("--compare-srm", action="append", default=[], type=_compared_srm, metavar="NAME=PATH",
                        help="a row with another SRM checkpoint in place of the run's (e.g. 'stage-1 SRM=runs/srm' "
                             "against SRM+); repeatable")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    args, passthrough = parser.parse_known_args(argv)
    return run_command(lambda: run(args, passthrough), debug=args.debug, usage_errors=())


if __name__ == "__main__":
    sys.exit(main())
