"""Loading GSM8K (openai/grade-school-math JSONL) as problem dicts, with line-numbered errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from srm_tasks.gsm8k.answers import canonical_number, parse_number


def _problem(record: Any, split: str, index: int, where: str) -> dict[str, str]:
    """A GSM8K record ``{question, answer: "... #### N"}`` as a problem dict; ValueError names ``where``."""
    if not isinstance(record, dict) or not isinstance(record.get("question"), str) \
            or not isinstance(record.get("answer"), str):
        raise ValueError(f"{where}: expected an object with string fields 'question' and 'answer'")
    solution, sep, gold = record["answer"].rpartition("####")
    value = parse_number(gold)
    if not sep or value is None:
        raise ValueError(f"{where}: the answer does not end in '#### <number>' (got {record['answer'][-40:]!r})")
    return {"id": f"gsm8k-{split}-{index}", "question": record["question"], "answer": canonical_number(value),
            "solution": solution.strip()}


def load_gsm8k(path: str | Path, limit: int | None = None, offset: int = 0) -> list[dict[str, str]]:
    """Problems from a GSM8K JSONL file: ``{id, question, answer (canonical gold), solution}``.

    ``id`` is ``gsm8k-<file stem>-<0-based line index>``, stable under ``offset``/``limit``. Lines
    before ``offset`` are not parsed; every line read must be a valid record (a bad one raises,
    naming the file and line, rather than silently shrinking the benchmark).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"GSM8K file not found: {path} (a JSONL file of {{question, answer}} records)")
    problems: list[dict[str, str]] = []
    with path.open(encoding="utf-8") as lines:
        for index, line in enumerate(lines):
            if index < offset:
                continue
            if limit is not None and len(problems) >= limit:
                break
            where = f"{path}:{index + 1}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as exc:
                raise ValueError(f"{where}: not a JSON line ({exc.msg})") from None
            problems.append(_problem(record, path.stem, index, where))
    return problems


def load_gsm8k_hub(split: str = "test") -> list[dict[str, str]]:
    """GSM8K through the HF ``datasets`` library (optional, needs the hub); same dicts as ``load_gsm8k``."""
    hint = "use a local GSM8K JSONL file instead"
    try:
        from datasets import load_dataset
    except ImportError:
        raise RuntimeError(f"the Hugging Face `datasets` library is not installed; {hint}") from None
    try:
        rows = load_dataset("openai/gsm8k", "main", split=split)
    except Exception as exc:  # offline, unknown split, hub errors: all mean "use a local file"
        raise RuntimeError(f"could not load GSM8K split {split!r} from the hub ({exc}); {hint}") from exc
    return [_problem(row, split, i, f"hub openai/gsm8k {split}[{i}]") for i, row in enumerate(rows)]

