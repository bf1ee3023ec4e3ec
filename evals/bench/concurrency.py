"""``python -m evals.bench.concurrency``: problems per minute with N searches in flight against one server.

Starts the llama.cpp server on the embedded SmolLM2 GGUF (loopback, a free port), then runs the same
``python -m evals.run`` evaluation through it at each concurrency (``--concurrency N``), each in a fresh output
folder, and prints problems per minute and the ratio to concurrency 1. The server is one process: on a machine
whose cores the server already keeps busy, more searches in flight mostly overlap the client's own work (the
SRM, the search) with the server's; on a GPU server with batching they would share its batches. A script that
prints figures, not a test.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from srm_agent.console import HelpFormatter


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evals.bench.concurrency", description=__doc__,
                                     formatter_class=HelpFormatter,
                                     epilog="Any other option goes to evals.run, e.g. --data SPLIT --limit 8.")
    parser.add_argument("--levels", default="1,2,4,8", help="concurrency levels to time")
    parser.add_argument("--methods", default="srm-bfs", help="evals.run methods to run at each level")
    args, passthrough = parser.parse_known_args(argv)
    levels = [int(x) for x in args.levels.split(",")]

    from evals import run as evals_run
    from srm_agent.embedded import embedded_generator_gguf
    from srm_agent.generators.llama_cpp import llama_cpp_server

    rows = []
    with tempfile.TemporaryDirectory() as tmp, llama_cpp_server(embedded_generator_gguf(), log_path=Path(tmp) / "server.log") \
            as (url, _):
        for level in levels:
            out = Path(tmp) / f"c{level}"
            started = time.perf_counter()
            code = evals_run.main(["--generator", f"openai:{url}", "--methods", args.methods, "--concurrency",
                                   str(level), "--out", str(out), *passthrough])
            seconds = time.perf_counter() - started
            if code:
                return code
            summary = json.loads((out / "summary.json").read_text())
            problems = max(row["n"] for row in summary["methods"].values())
            solved = {m: row["solved"] for m, row in summary["methods"].items()}
            rows.append((level, problems, seconds, solved))
    base = rows[0][1] / rows[0][2]
    print(f"\n{'concurrency':>11} {'problems':>8} {'seconds':>8} {'problems/min':>12} {'vs 1':>6}  solved")
    for level, problems, seconds, solved in rows:
        rate = problems / seconds
        print(f"{level:>11} {problems:>8} {seconds:>8.1f} {60 * rate:>12.2f} {rate / base:>6.2f}  {solved}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
