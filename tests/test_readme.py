"""The README runs as pasted: every Python and shell block, from the repository root, with .venv activated.

A block may be preceded by a directive in an HTML comment (invisible on the rendered page):
``<!-- readme-test: skip REASON -->`` (the block is not run: say why), or ``<!-- readme-test: append ARGS -->``
(each ``python`` command of the block is run with ARGS appended: a long evaluation or training as a smoke run,
e.g. ``--limit 1``). Anything else is run exactly as written; a shell block runs in one shell, line after line.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
FENCE = re.compile(r"(?:<!-- readme-test: (?P<directive>[^>]*?) -->\n)?```(?P<lang>python|bash)\n(?P<body>.*?)```",
                   re.S)
TIMEOUT_S = 600


@dataclass(frozen=True)
class Block:
    line: int
    lang: str
    body: str
    directive: str

    def __str__(self) -> str:
        return f"README.md:{self.line} ({self.lang})"


def blocks() -> list[Block]:
    text = README.read_text(encoding="utf-8")
    return [Block(text[: m.start()].count("\n") + 1, m["lang"], m["body"], (m["directive"] or "").strip())
            for m in FENCE.finditer(text)]


def test_every_block_is_either_run_or_skipped_with_a_reason():
    found = blocks()
    assert len(found) >= 10
    for block in found:
        kind, _, rest = block.directive.partition(" ")
        assert kind in ("", "skip", "append"), f"{block}: unknown directive {block.directive!r}"
        assert kind != "skip" or len(rest) > 10, f"{block}: a skipped block says why"


def shell_script(body: str, append: str) -> str:
    """A shell block as one script: continuation lines joined, ``append`` added to each ``python`` command."""
    def with_args(line: str) -> str:
        command, hash_, comment = line.partition("  #")  # README comments sit two spaces after the command
        return f"{command.rstrip()} {append}" + (f"  #{comment}" if hash_ else "")

    lines = re.sub(r"\\\n\s*", " ", body).splitlines()
    return "\n".join(with_args(line) if append and line.startswith("python") else line for line in lines)


def environment() -> dict[str, str]:
    env = dict(os.environ)
    venv = Path(sys.executable).parent
    env["PATH"] = f"{venv}{os.pathsep}{env.get('PATH', '')}"  # as after `source .venv/bin/activate`
    env["VIRTUAL_ENV"] = str(venv.parent)
    env.pop("PYTHONPATH", None)
    return env


@pytest.fixture(scope="module")
def checkout(tmp_path_factory) -> Path:
    """The repository as the blocks see it, but with a ``runs/`` of its own and a copy of ``results/`` (without
    traces): every other top-level entry linked, and ``../shared`` beside it, so a block writes its outputs here
    and never meets (or changes) a user's real runs or the committed results."""
    top = tmp_path_factory.mktemp("readme")
    root = top / ROOT.name
    root.mkdir()
    for entry in ROOT.iterdir():
        if entry.name == "results":
            shutil.copytree(entry, root / entry.name, ignore=shutil.ignore_patterns("traces"))
        elif entry.name != "runs":
            (root / entry.name).symlink_to(entry)
    if (ROOT.parent / "shared").exists():
        (top / "shared").symlink_to(ROOT.parent / "shared")
    return root


@pytest.mark.slow
@pytest.mark.parametrize("block", [b for b in blocks() if not b.directive.startswith("skip")], ids=str)
def test_the_block_runs_as_pasted(block: Block, checkout: Path):
    env = environment()
    if block.lang == "python":
        commands = [[sys.executable, "-c", block.body]]
    else:
        append = block.directive.partition(" ")[2] if block.directive.startswith("append") else ""
        commands = [["bash", "-c", "set -euo pipefail\n" + shell_script(block.body, append)]]
    for command in commands:
        done = subprocess.run(command, cwd=checkout, env=env, capture_output=True, text=True, timeout=TIMEOUT_S)
        assert done.returncode == 0, (f"{block} exited {done.returncode}: {shlex.join(command)[:300]}\n"
                                      f"{done.stdout[-2000:]}\n{done.stderr[-3000:]}")


RESULTS_TABLE = re.compile(r"<!-- results: (?P<run>\S+) -->\n(?P<table>(?:\|.*\n)+)")


def test_every_results_table_is_what_the_committed_run_prints():
    """A table marked ``<!-- results: DIR -->`` is exactly ``python -m evals.report show DIR --markdown``
    of the committed run, so no figure in the README can drift from the records behind it."""
    from evals.report import markdown_table

    found = list(RESULTS_TABLE.finditer(README.read_text(encoding="utf-8")))
    assert found, "the README shows no table of a committed run"
    for match in found:
        summary = json.loads((ROOT / match["run"] / "summary.json").read_text(encoding="utf-8"))
        assert match["table"].strip() == markdown_table(summary), f"README table of {match['run']} is stale"
