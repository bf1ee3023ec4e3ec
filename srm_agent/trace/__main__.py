"""``python -m srm_agent.trace view TRACE.json [-o page.html]``: render a trace file as an offline HTML page."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from srm_agent.console import run_command
from srm_agent.errors import InputError
from srm_agent.fsio import atomic_write_text
from srm_agent.trace.html import render_html
from srm_agent.trace.io import load_trace


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m srm_agent.trace",
        description="Search traces: the JSON record of one tree search and an offline HTML viewer for it.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    view = sub.add_parser("view", help="render a trace JSON as one self-contained HTML page",
                          description="Validate TRACE and write an offline HTML page drawing its search tree.")
    view.add_argument("trace", metavar="TRACE", help="trace JSON file (format version 2; version 1 is read too)")
    view.add_argument("-o", "--output", default=None, metavar="HTML",
                      help="where to write the page; default: TRACE with the suffix .html")
    view.add_argument("--debug", action="store_true", help="show tracebacks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    out = Path(args.output) if args.output else Path(args.trace).with_suffix(".html")

    def view() -> None:
        atomic_write_text(out, render_html(load_trace(args.trace, registered_names=False)))
        print(out)

    return run_command(view, debug=args.debug, usage_errors=(InputError,))


if __name__ == "__main__":
    sys.exit(main())
