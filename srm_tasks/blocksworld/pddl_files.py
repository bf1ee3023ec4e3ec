"""Reading PlanBench problem files and RAP's split files into problem dicts.

Problem files are parsed with the maintained ``pddl`` package (one parser object, reused: building
it costs ~0.1 s, a file then ~2 ms), then checked strictly: domain ``blocksworld-4ops``, known
predicates, declared objects, a physically possible initial state and a conjunctive goal. Any
file that fails is a ValueError naming it, never a silent default.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path
from typing import Any

from srm_tasks.blocksworld.english import action_text
from srm_tasks.blocksworld.problems import make_problem, problem_facts
from srm_tasks.blocksworld.world import Op, parse_atom

DOMAIN = "blocksworld-4ops"


@functools.cache
def _problem_parser() -> Any:
    from pddl.parser.problem import ProblemParser

    return ProblemParser()


def _atoms(formula: Any, where: str) -> list[tuple[str, ...]]:
    from pddl.logic.base import And
    from pddl.logic.predicates import Predicate

    parts = formula if isinstance(formula, list) else formula.operands if isinstance(formula, And) else [formula]
    if not all(isinstance(p, Predicate) for p in parts):
        raise ValueError(f"the {where} must be a conjunction of positive atoms, got {formula}")
    return [(p.name.lower(), *(t.name.lower() for t in p.terms)) for p in parts]


def read_pddl_problem(path: str | Path) -> dict[str, Any]:
    """One PDDL problem file as a problem dict with id ``<folder>/<stem>`` (PlanBench reuses stems across folders)."""
    from lark.exceptions import LarkError
    from pddl.exceptions import PDDLError

    path = Path(path)
    try:
        parsed = _problem_parser()(path.read_text(encoding="utf-8"))
        if parsed.domain_name.lower() != DOMAIN:
            raise ValueError(f"domain is {parsed.domain_name!r}, not {DOMAIN!r}")
        declared = sorted(o.name.lower() for o in parsed.objects)
        init = _atoms(sorted(parsed.init, key=str), "init")
        goal = _atoms(parsed.goal, "goal")
        problem = make_problem(f"{path.parent.name}/{path.stem}", frozenset(init), frozenset(goal))
        problem_facts(problem)
        used = sorted({a for fact in init for a in fact[1:]})
        if used != declared:
            raise ValueError(f"objects {declared} declared but the initial state places {used}")
    except (OSError, UnicodeDecodeError, LarkError, PDDLError, ValueError) as exc:
        raise ValueError(f"{path}: not a readable {DOMAIN} problem: {exc}") from None
    return problem


def parse_pddl_plan(text: str) -> list[Op]:
    """A plan as PDDL lines, ``(unstack b c)`` one per line; blank lines are skipped, nothing else is."""
    return [parse_atom(line.lower()) for line in text.splitlines() if line.strip()]


def _natural(path: Path) -> list[Any]:
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", path.name)]


def load_pddl_folder(folder: str | Path, pattern: str = "*.pddl") -> list[dict[str, Any]]:
    """Every problem file matching ``pattern`` in ``folder`` (instance-2 before instance-10)."""
    folder = Path(folder)
    files = sorted(folder.glob(pattern), key=_natural)
    if not files:
        raise FileNotFoundError(f"no files matching {pattern!r} in {folder}")
    return [read_pddl_problem(f) for f in files]


def _resolve(raw: str, base: Path, source: Path) -> Path:
    """An instance path as written in a split file: absolute, or relative to its folder or any folder above.

    RAP writes paths relative to its checkout root (three folders above ``split_v1/``), so the
    split file's own folder and each parent are tried in turn.
    """
    path = Path(raw)
    candidates = [path] if path.is_absolute() else [folder / path for folder in (base, *base.parents)]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{source}: instance file {raw!r} not found "
                            f"({'as given' if path.is_absolute() else f'relative to {base} or any folder above it'})")


def load_split(path: str | Path) -> list[dict[str, Any]]:
    """A RAP split or step file: a JSON list of ``[pddl_path, gold_plan_text, optimal_length]``."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not JSON: {exc}") from None
    if not isinstance(records, list):
        raise ValueError(f"{path}: expected a JSON list of [pddl_path, plan, length] records")
    problems = []
    base = path.resolve().parent
    for i, record in enumerate(records):
        if not (isinstance(record, list) and len(record) == 3 and isinstance(record[0], str)
                and isinstance(record[1], str) and isinstance(record[2], int)):
            raise ValueError(f"{path}: record {i} is not [pddl_path: str, plan: str, length: int]: {record!r:.200}")
        problem = read_pddl_problem(_resolve(record[0], base, path))
        try:
            plan = [action_text(op) for op in parse_pddl_plan(record[1])]
        except ValueError as exc:
            raise ValueError(f"{path}: record {i}: bad gold plan: {exc}") from None
        if len(plan) != record[2]:
            raise ValueError(f"{path}: record {i}: the gold plan has {len(plan)} steps, its length says {record[2]}")
        problem.update(optimal_length=record[2], gold_plan=plan)
        problems.append(problem)
    return problems
