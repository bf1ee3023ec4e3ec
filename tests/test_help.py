"""Every command's --help: one layout, defaults stated once and as typed, no reST or Python reprs."""

from __future__ import annotations

import argparse
import importlib
import re

import pytest

COMMANDS = [
    ("srm_agent.cli", []), ("srm_agent.cli", ["score"]), ("srm_agent.cli", ["propose"]),
    ("trainer.train_srm", []), ("trainer.train_srm_plus", []), ("trainer.reward_tuning", []),
    ("trainer.recipes", []), ("trainer.blocksworld_labels", []), ("evals.throughput", []),
    ("trainer.text_lengths", []), ("trainer.evaluate_srm", []), ("evals.report", ["show"]),
    ("evals.report", ["merge"]), ("evals.ablate", []),
]


def help_text(module: str, argv: list[str], capsys) -> str:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        importlib.import_module(module).main([*argv, "--help"])
    assert info.value.code == 0
    return capsys.readouterr().out


def option_entries(text: str) -> list[str]:
    """Each option's help, its wrapped lines joined."""
    entries: list[str] = []
    for line in text.splitlines():
        if re.match(r"^  -", line):
            entries.append(line.strip())
        elif entries and line.startswith("   ") and line.strip():
            entries[-1] += " " + line.strip()
        elif not line.strip():
            entries.append("")
    return [e for e in entries if e]


@pytest.mark.parametrize(("module", "argv"), COMMANDS, ids=[" ".join([m, *a]) for m, a in COMMANDS])
def test_help_states_each_default_once_as_typed(module, argv, capsys):
    text = help_text(module, argv, capsys)
    assert "``" not in text  # reST literals are for docstrings, not terminals
    for entry in option_entries(text):
        assert not re.search(r"\(default[^)]*\)\s*\(default", entry), entry  # one stated, one added
        assert not re.search(r"\(default: (None|False|True|\(|\[)", entry), entry


def test_srm_help_names_the_shipped_checkpoint(capsys):
    entries = option_entries(help_text("srm_agent.cli", ["score"], capsys))
    srm = next(e for e in entries if e.startswith("--srm"))
    assert "srm_agent/checkpoints/blocksworld-srm" in srm and "MiniLM" not in srm
    redis = next(e for e in entries if e.startswith("--redis-url"))
    assert "$REDIS_URL" in redis


def test_formatter_shows_ranges_lists_and_percent_signs_as_typed():
    from srm_agent.console import HelpFormatter

    parser = argparse.ArgumentParser(prog="x", formatter_class=HelpFormatter, description="run ``x --y``")
    parser.add_argument("--blocks", default=(3, 4), help="N or N-M blocks")
    parser.add_argument("--ks", default=[4, 8], help="choices")
    parser.add_argument("--share", default="10%", help="a share")
    parser.add_argument("--said", default=5, help="five (default: five)")
    parser.add_argument("--flag", action="store_true", help="a switch")
    text = parser.format_help()
    assert "run x --y" in text
    assert "N or N-M blocks (default: 3-4)" in text and "choices (default: 4,8)" in text
    assert "a share (default: 10%)" in text and "five (default: five)\n" in text
    assert "a switch\n" in text
