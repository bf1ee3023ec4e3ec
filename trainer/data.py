"""Training data for the SRM: step records, sibling pairs, and a train/dev split by problem.

Every source becomes ``StepRecord``s (a context, one candidate step, a target label in [0, 1]
and the problem it belongs to); pairs are then built the same way for all of them: siblings
(same problem, same context) whose labels differ by more than ``epsilon``. The SRM scores
``(context, step)`` exactly as it scores ``(state, action)`` at search time.

Formats read (``load_records`` picks by content, so a file's name does not matter):

- **PRM800K official JSONL** (openai/prm800k): ``question.problem`` and ``label.steps[]``, each
  with ``completions[].text/.rating`` and the chosen path in ``chosen_completion`` (an index) or
  ``human_completion`` (a human-written step, unrated). The context of step i is the problem and
  the steps chosen before it; the walk ends where neither is given (``found_error``, ``give_up``).
- **PRM800K stepwise-critic parquet** (``../shared/data/prm800k/stepwise_critic``), one row per
  (problem, chosen prefix, candidate next step). Schema, as pyarrow reads it::

      instruction: string              the MATH problem
      responses: list<string>          the steps chosen so far (the prefix)
      next_response: string            the candidate step
      answer: string (nullable)        set on final-answer steps; the converter cut it out of the
                                       step, which is rebuilt as PRM800K writes it:
                                       "<step>\n\n# Answer\n\n<answer>"
      is_human_response: bool          a human-written step (rating is null)
      is_solution: bool                the step ends the solution
      is_preferred_response: bool      the labeller's chosen step at this point
      rating: int8 (phase1_test) | double (phase1_train_plus), nullable: 1, 0, -1 or null
      error_reason: string (phase1_train_plus only; the converter's own tag, not OpenAI's; unused)

- **RewardTuning JSONL** (DESIGN §5): ``{state, action, reward in [0,1], source}`` and, when
  ``trainer.reward_tuning`` wrote it, ``problem_id`` (the split key) and ``visits``.
- **Step-record JSONL**: ``{context, step, label, group, source}`` (``StepRecord`` as JSON), for
  labels made elsewhere (e.g. Blocksworld weak labels).

PRM800K ratings become labels: 1 → 1.0, -1 → 0.0, and 0 as ``zero_as`` says ("drop", the
default, as the paper's "2cls" data probably did; "negative"; "positive"). Unrated steps (human
completions) are dropped. Duplicate ``(problem, context, step)`` records are merged into one whose
label is their mean, so a step is never paired with itself.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from srm_tasks.gsm8k.task import render_context

ZERO_AS = ("drop", "negative", "positive")
PARQUET_COLUMNS = ("instruction", "responses", "next_response", "answer", "rating")
T = TypeVar("T", "StepRecord", "Pair")


class DataError(ValueError):
    """A data file or data set that cannot be used; the message names the file and line or row."""


@dataclass(frozen=True)
class StepRecord:
    """One candidate step in its context, with a target label in [0, 1] (1 good, 0 bad)."""

    context: str
    step: str
    label: float
    group: str  # the problem it belongs to: the unit of the train/dev split
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Pair:
    """Two sibling steps of one context; ``positive`` has the larger label (by ``margin``)."""

    context: str
    positive: str
    negative: str
    margin: float
    group: str
    source: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class LoadStats:
    """What one file gave, for the model card: records kept and why others were not."""

    path: str
    format: str
    records: int = 0
    unrated: int = 0
    zero_dropped: int = 0
    merged_duplicates: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# -- contexts -----------------------------------------------------------------------------------------

def _label_of_rating(rating: Any, zero_as: str) -> float | None:
    """PRM800K rating → label; None means "no label" (unrated, or a 0 that is dropped)."""
    if rating is None:
        return None
    if isinstance(rating, float) and math.isnan(rating):
        return None
    if rating not in (-1, 0, 1):
        raise ValueError(f"rating must be -1, 0, 1 or null, got {rating!r}")
    if rating == 1:
        return 1.0
    if rating == -1:
        return 0.0
    return {"drop": None, "negative": 0.0, "positive": 1.0}[zero_as]


def _check_zero_as(zero_as: str) -> None:
    if zero_as not in ZERO_AS:
        raise ValueError(f"zero_as must be one of {', '.join(ZERO_AS)}, got {zero_as!r}")


def _group_key(problem: str) -> str:
    return " ".join(problem.split())


# -- readers ------------------------------------------------------------------------------------------

def _jsonl_lines(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for each non-blank line; a bad line is a DataError naming it."""
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    seen = False
    with path.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            seen = True
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataError(f"{path}:{number}: not valid JSON ({exc.msg} at column {exc.colno})") from None
            if not isinstance(obj, dict):
                raise DataError(f"{path}:{number}: expected a JSON object, got {type(obj).__name__}")
            yield number, obj
    if not seen:
        raise DataError(f"{path}: empty file (no records)")


def _prm800k_record(obj: dict[str, Any], zero_as: str, source: str, stats: LoadStats) -> Iterator[StepRecord]:
    problem = obj["question"]["problem"]
    steps = obj["label"]["steps"]
    if not isinstance(problem, str) or not isinstance(steps, list):
        raise ValueError("question.problem must be a string and label.steps a list")
    group, chosen = _group_key(problem), []
    for i, step in enumerate(steps):
        context = render_context(problem, chosen)
        completions = step.get("completions") or []
        for completion in completions:
            text = completion["text"]
            if not isinstance(text, str):
                raise ValueError(f"label.steps[{i}].completions[].text must be a string")
            label = _label_of_rating(completion.get("rating"), zero_as)
            if label is None:
                stats.unrated += completion.get("rating") is None
                stats.zero_dropped += completion.get("rating") == 0
                continue
            yield StepRecord(context, text, label, group, source)
        pick = step.get("chosen_completion")
        if pick is not None:
            chosen.append(completions[pick]["text"])
        elif step.get("human_completion"):
            chosen.append(step["human_completion"]["text"])
        else:
            break  # the labeller stopped here (found an error or gave up)


def read_prm800k_jsonl(path: str | Path, zero_as: str = "drop") -> tuple[list[StepRecord], LoadStats]:
    """Step records from PRM800K's official JSONL (see the module docstring)."""
    _check_zero_as(zero_as)
    path = Path(path)
    stats = LoadStats(str(path), "prm800k-jsonl")
    records: list[StepRecord] = []
    for number, obj in _jsonl_lines(path):
        try:
            records.extend(_prm800k_record(obj, zero_as, path.name, stats))
        except (AttributeError, KeyError, TypeError, IndexError, ValueError) as exc:
            raise DataError(f"{path}:{number}: not a PRM800K record ({type(exc).__name__}: {exc})") from None
    return records, stats


def read_stepwise_parquet(path: str | Path, zero_as: str = "drop") -> tuple[list[StepRecord], LoadStats]:
    """Step records from a PRM800K stepwise-critic parquet file (schema in the module docstring)."""
    _check_zero_as(zero_as)
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError(f"{path}: reading parquet needs pyarrow (pip install pyarrow)") from None
    try:
        table = pq.read_table(path, columns=list(PARQUET_COLUMNS))
    except Exception as exc:  # pyarrow raises several types for missing columns and broken files
        raise DataError(f"{path}: not a stepwise-critic parquet file with columns "
                        f"{', '.join(PARQUET_COLUMNS)} ({exc})") from None
    if table.num_rows == 0:
        raise DataError(f"{path}: empty file (no rows)")
    stats = LoadStats(str(path), "prm800k-stepwise-parquet")
    records: list[StepRecord] = []
    columns = {name: table.column(name).to_pylist() for name in PARQUET_COLUMNS}
    for row, (problem, prefix, step, answer, rating) in enumerate(zip(*columns.values())):
        try:
            if not isinstance(problem, str) or not isinstance(step, str):
                raise ValueError("instruction and next_response must be strings")
            if answer is not None:
                step = f"{step}\n\n# Answer\n\n{answer}"
            if not isinstance(prefix, list) or not all(isinstance(s, str) for s in prefix):
                raise ValueError("responses must be a list of strings")
            label = _label_of_rating(rating, zero_as)
        except ValueError as exc:
            raise DataError(f"{path}: row {row}: {exc}") from None
        if label is None:
            stats.unrated += rating is None or (isinstance(rating, float) and math.isnan(rating))
            stats.zero_dropped += rating == 0
            continue
        records.append(StepRecord(render_context(problem, prefix), step, label, _group_key(problem), path.name))
    return records, stats


def _finite_unit(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value!r}")
    return float(value)


def _reward_record(obj: dict[str, Any], fallback_source: str) -> StepRecord:
    state, action = obj.get("state"), obj.get("action")
    if not isinstance(state, str) or not isinstance(action, str) or not action.strip():
        raise ValueError("'state' and 'action' must be strings (action non-empty)")
    reward = _finite_unit(obj.get("reward"), "reward")
    group = obj.get("problem_id")
    group = str(group) if group is not None else state  # without problem ids the split is by state
    return StepRecord(state, action, reward, group, str(obj.get("source") or fallback_source))


def _step_record(obj: dict[str, Any], fallback_source: str) -> StepRecord:
    context, step, group = obj.get("context"), obj.get("step"), obj.get("group")
    if not isinstance(context, str) or not isinstance(step, str) or not step.strip():
        raise ValueError("'context' and 'step' must be strings (step non-empty)")
    if not isinstance(group, str) or not group:
        raise ValueError("'group' (the problem key) must be a non-empty string")
    return StepRecord(context, step, _finite_unit(obj.get("label"), "label"), group,
                      str(obj.get("source") or fallback_source))


def read_reward_jsonl(path: str | Path) -> tuple[list[StepRecord], LoadStats]:
    """Step records from RewardTuning JSONL or step-record JSONL (see the module docstring)."""
    path = Path(path)
    stats = LoadStats(str(path), "")
    records: list[StepRecord] = []
    for number, obj in _jsonl_lines(path):
        kind = "rewards" if "reward" in obj else "step-records"
        stats.format = stats.format or kind
        try:
            records.append(_reward_record(obj, path.name) if kind == "rewards" else _step_record(obj, path.name))
        except ValueError as exc:
            raise DataError(f"{path}:{number}: {exc}") from None
    if stats.format == "rewards":  # their split falls back on the state text: worth a note on the card
        stats.extra["without_problem_id"] = sum(r.group == r.context for r in records)
    return records, stats


def sniff_format(path: str | Path) -> str:
    """"parquet", "prm800k" or "rewards" (RewardTuning or step-record JSONL), from the content."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    with path.open("rb") as f:
        if f.read(4) == b"PAR1":
            return "parquet"
    for number, obj in _jsonl_lines(path):
        if "question" in obj and "label" in obj:
            return "prm800k"
        if {"state", "action", "reward"} <= obj.keys() or {"context", "step", "label"} <= obj.keys():
            return "rewards"
        raise DataError(f"{path}:{number}: unknown record format (keys {', '.join(sorted(obj)) or 'none'}); "
                        "expected PRM800K JSONL (question, label), RewardTuning JSONL (state, action, reward) "
                        "or step records (context, step, label, group)")
    raise DataError(f"{path}: empty file (no records)")  # pragma: no cover - _jsonl_lines raises first


def merge_duplicates(records: Iterable[StepRecord]) -> tuple[list[StepRecord], int]:
    """One record per (group, context, step), labelled with the mean; returns (records, merged count)."""
    buckets: dict[tuple[str, str, str], list[StepRecord]] = {}
    for r in records:
        buckets.setdefault((r.group, r.context, r.step), []).append(r)
    merged = [rs[0] if len(rs) == 1 else StepRecord(rs[0].context, rs[0].step, sum(r.label for r in rs) / len(rs),
                                                     rs[0].group, rs[0].source) for rs in buckets.values()]
    return merged, sum(len(rs) - 1 for rs in buckets.values())


def load_records(path: str | Path, zero_as: str = "drop") -> tuple[list[StepRecord], LoadStats]:
    """Step records from any supported file, duplicates merged; a file that gives none is an error."""
    kind = sniff_format(path)
    if kind == "parquet":
        records, stats = read_stepwise_parquet(path, zero_as)
    elif kind == "prm800k":
        records, stats = read_prm800k_jsonl(path, zero_as)
    else:
        records, stats = read_reward_jsonl(path)
    records, stats.merged_duplicates = merge_duplicates(records)
    stats.records = len(records)
    if not records:
        raise DataError(f"{path}: no labelled steps ({stats.unrated} unrated, {stats.zero_dropped} rated 0 and "
                        f"dropped by zero_as={zero_as!r})")
    return records, stats


# -- pairs and split ----------------------------------------------------------------------------------

def pairs_from_rewards(records: Iterable[StepRecord | dict[str, Any]], epsilon: float = 0.0) -> list[Pair]:
    """Every pair of siblings (same group and context) whose labels differ by more than ``epsilon``.

    Works for PRM800K labels (0/1, any epsilon < 1) and MCTS rewards alike; dicts in RewardTuning
    form (``{state, action, reward, source, problem_id?}``) are accepted too. Duplicates are merged
    first, so no step is paired with itself.
    """
    if not math.isfinite(epsilon) or epsilon < 0:
        raise ValueError(f"epsilon must be a finite number >= 0, got {epsilon!r}")
    items = [r if isinstance(r, StepRecord) else _reward_record(r, "") for r in records]
    items, _ = merge_duplicates(items)
    siblings: dict[tuple[str, str], list[StepRecord]] = defaultdict(list)
    for r in items:
        siblings[(r.group, r.context)].append(r)
    pairs = []
    for (group, context), rs in siblings.items():
        for i, a in enumerate(rs):
            for b in rs[i + 1:]:
                if abs(a.label - b.label) > epsilon:
                    hi, lo = (a, b) if a.label > b.label else (b, a)
                    pairs.append(Pair(context, hi.step, lo.step, hi.label - lo.label, group, hi.source))
    return pairs


def require_pairs(pairs: Sequence[Pair], records: Sequence[StepRecord], where: str, epsilon: float) -> None:
    """A clear error for a data set that gives no pairs (every context has one label only)."""
    if not pairs:
        contexts = len({(r.group, r.context) for r in records})
        raise DataError(f"{where}: no valid pairs: {len(records)} labelled steps in {contexts} contexts, but no "
                        f"context has two steps whose labels differ by more than epsilon={epsilon}")


def group_rank(group: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}\0{group}".encode()).hexdigest()


def dev_groups(groups: Iterable[str], dev_fraction: float, seed: int = 0) -> set[str]:
    """The groups (problems) that form the dev side: a seeded hash order, never row order.

    ``round(n * dev_fraction)`` groups, at least one on each side when there are two or more.
    """
    if not 0.0 <= dev_fraction < 1.0:
        raise ValueError(f"dev_fraction must be in [0, 1), got {dev_fraction!r}")
    unique = sorted(set(groups), key=lambda g: group_rank(g, seed))
    if dev_fraction == 0 or len(unique) < 2:
        return set()
    n_dev = min(max(round(len(unique) * dev_fraction), 1), len(unique) - 1)
    return set(unique[:n_dev])


def split_by_group(items: Sequence[T], dev: set[str]) -> tuple[list[T], list[T]]:
    """(train, dev) by each item's ``group``."""
    return [x for x in items if x.group not in dev], [x for x in items if x.group in dev]


def subsample(items: Sequence[T], limit: int | None, seed: int) -> list[T]:
    """At most ``limit`` items, drawn with ``seed`` (order kept); all of them when ``limit`` is None."""
    if limit is None or len(items) <= limit:
        return list(items)
    keep = sorted(random.Random(seed).sample(range(len(items)), limit))
    return [items[i] for i in keep]


def pairs_by_state(pairs: Sequence[Pair]) -> list[list[int]]:
    """The indices of ``pairs`` grouped by state (group and context), in first-seen order."""
    states: dict[tuple[str, str], list[int]] = {}
    for i, p in enumerate(pairs):
        states.setdefault((p.group, p.context), []).append(i)
    return list(states.values())


def subsample_states(pairs: Sequence[Pair], limit: int | None, seed: int) -> list[Pair]:
    """At most ``limit`` pairs, drawn as whole states (every sibling pair of a state, states in a seeded
    order; the last one cut to the limit), so that a batch of one state's pairs encodes each step once."""
    if limit is None or len(pairs) <= limit:
        return list(pairs)
    runs = pairs_by_state(pairs)
    keep: list[int] = []
    for k in random.Random(seed).sample(range(len(runs)), len(runs)):
        keep += runs[k][:limit - len(keep)]
        if len(keep) == limit:
            break
    return [pairs[i] for i in sorted(keep)]
