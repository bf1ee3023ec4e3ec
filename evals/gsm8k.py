"""GSM8K as a search domain: loading, numeric answer checking, and a step-wise task.

A step is one reasoning sentence on its own line; a chain ends with "The answer is N." (the
RAP/CoT convention, so answers are extracted the way those baselines extract them). Data is read
from a local JSONL file (openai/grade-school-math format) at run time, never bundled; without one
the task falls back on a few built-in examples, so it runs on a fresh machine.
"""

from __future__ import annotations

import json
import random
import re
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

# A number as GSM8K text writes it: optional sign and "$", thousands commas, decimals, a simple fraction.
_NUMBER = re.compile(r"([-−]?)\s*\$?\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*/\s*([1-9]\d*))?")
# Where a final answer is stated: gold "#### N", "The answer is N" (RAP/CoT), "A: N" (OpenAI's model samples).
_MARKER = re.compile(r"####|\banswer is\b:?|^A:", re.IGNORECASE | re.MULTILINE)
_CALCULATOR = re.compile(r"<<[^>]*>>")  # GSM8K's calculator annotations, e.g. <<16-3-4=9>>
# A sentence break inside a line, but not after a title or an initial ("Mr. Lucian", "John F. Kennedy").
_SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\b[A-Z]\.)\s+(?=[A-Z$])")

INSTRUCTION = ('Solve the math word problem step by step. Write one sentence per line and end with '
               '"The answer is N."')
BUILTIN_SHOTS = [  # written for this project; used when no train split is given
    {"question": "Mia has 3 boxes with 12 pencils in each box. She gives away 10 pencils. How many pencils "
                 "does she have left?",
     "solution": "Mia starts with 3 * 12 = 36 pencils.\nAfter giving some away she has 36 - 10 = 26 pencils.",
     "answer": "26"},
    {"question": "A bus ticket costs $2.50 and Omar rides the bus twice a day for 4 days. How much does he "
                 "spend on tickets?",
     "solution": "Omar rides the bus 2 * 4 = 8 times.\nHe spends 8 * 2.50 = $20 on tickets.",
     "answer": "20"},
    {"question": "A garden has 45 tulips. One third of them are red and the rest are yellow. How many yellow "
                 "tulips are there?",
     "solution": "There are 45 / 3 = 15 red tulips.\nSo there are 45 - 15 = 30 yellow tulips.",
     "answer": "30"},
]


# -- numbers and answers ----------------------------------------------------------------------------

def _parse(match: re.Match[str]) -> Fraction:
    value = Fraction(match.group(2).replace(",", "")) / int(match.group(3) or 1)
    return -value if match.group(1) else value


def _canonical(value: Fraction) -> str:
    """One spelling per number ("18.0" and "18" both give "18"), so answers compare as strings too."""
    if value.denominator == 1:
        return str(value.numerator)
    rest, counts = value.denominator, []
    for p in (2, 5):
        counts.append(0)
        while rest % p == 0:
            rest, counts[-1] = rest // p, counts[-1] + 1
    if rest != 1:  # not a terminating decimal
        return f"{value.numerator}/{value.denominator}"
    places = max(counts)  # the fewest decimal places that are exact, so no trailing zeros
    return format(Decimal(f"{value.numerator * 10**places // value.denominator}e-{places}"), "f")


def _number(text: str) -> Fraction | None:
    """The value of a text that is one number and nothing else ("$1,234.50", "-3", "3/4")."""
    match = _NUMBER.fullmatch(text.strip().rstrip("."))
    return _parse(match) if match else None


def extract_answer(text: str) -> str | None:
    """The final numeric answer stated in ``text``, canonical, or None when none is stated.

    The last "#### N", "The answer is N" or "A: N" line wins; like RAP's extractor, an equation
    there ("The answer is 2 + 3 = 5") gives what follows the last "=". A text that is just a number
    is its own answer. No guessing from the last number in free text: an unfinished chain has none.
    """
    text = _CALCULATOR.sub("", text)
    markers = list(_MARKER.finditer(text))
    if not markers:
        value = _number(text)
        return None if value is None else _canonical(value)
    tail = text[markers[-1].end():].split("\n", 1)[0].rsplit("=", 1)[-1]
    match = _NUMBER.search(tail)
    return _canonical(_parse(match)) if match else None


def answers_match(pred: str | None, gold: str | None) -> bool:
    """Whether two answers are the same number ("18.0" == "18", "1,000" == "1000", "$5.50" == "5.5").

    Exact (rational) equality: GSM8K golds are integers, so a tolerance would only accept
    rounded wrong answers. Non-numeric answers compare as stripped strings.
    """
    if pred is None or gold is None:
        return False
    a, b = _number(pred), _number(gold)
    if a is None or b is None:
        return pred.strip() == gold.strip()
    return a == b


# -- loading ----------------------------------------------------------------------------------------

def _problem(record: Any, split: str, index: int, where: str) -> dict[str, str]:
    """A GSM8K record ``{question, answer: "... #### N"}`` as a problem dict; ValueError names ``where``."""
    if not isinstance(record, dict) or not isinstance(record.get("question"), str) \
            or not isinstance(record.get("answer"), str):
        raise ValueError(f"{where}: expected an object with string fields 'question' and 'answer'")
    solution, sep, gold = record["answer"].rpartition("####")
    value = _number(gold)
    if not sep or value is None:
        raise ValueError(f"{where}: the answer does not end in '#### <number>' (got {record['answer'][-40:]!r})")
    return {"id": f"gsm8k-{split}-{index}", "question": record["question"], "answer": _canonical(value),
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
    hint = "pass a local GSM8K JSONL path to load_gsm8k instead"
    try:
        from datasets import load_dataset
    except ImportError:
        raise RuntimeError(f"the Hugging Face `datasets` library is not installed; {hint}") from None
    try:
        rows = load_dataset("openai/gsm8k", "main", split=split)
    except Exception as exc:  # offline, unknown split, hub errors: all mean "use a local file"
        raise RuntimeError(f"could not load GSM8K split {split!r} from the hub ({exc}); {hint}") from exc
    return [_problem(row, split, i, f"hub openai/gsm8k {split}[{i}]") for i, row in enumerate(rows)]


# -- the task ---------------------------------------------------------------------------------------

def solution_lines(solution: str, answer: str) -> list[str]:
    """A GSM8K solution as search steps: one sentence per line, no calculator notes, then the answer line."""
    text = _CALCULATOR.sub("", solution)
    sentences = [s.strip() for line in text.splitlines() for s in _SENTENCE_END.split(line)]
    return [s for s in sentences if s] + [f"The answer is {answer}."]


class GSM8KTask:
    """GSM8K step by step; states are ``{"question", "gold", "steps"}`` (see ``graphs.task.Task``).

    Few-shot examples come from ``train_path`` (``n_shots`` drawn with ``seed`` among solutions of
    at most ``max_steps`` lines, so the examples show chains the search can finish) or, without one,
    the built-in examples (at most three). A chain ends when a step states the answer; the prompt
    for step ``max_steps`` is led into "The answer is" (as RAP forces its final question at the
    depth limit), so every chain commits to an answer within the budget.
    """

    name = "gsm8k"
    goal_visible = False  # the gold answer only grades the answer a search commits to

    def __init__(self, train_path: str | Path | None = None, n_shots: int = 4, max_steps: int = 5,
                 seed: int = 0) -> None:
        if n_shots < 0 or max_steps < 1:
            raise ValueError(f"need n_shots >= 0 and max_steps >= 1, got {n_shots} and {max_steps}")
        self.max_steps = max_steps
        if train_path is None:
            shots = [(s["question"], solution_lines(s["solution"], s["answer"])) for s in BUILTIN_SHOTS[:n_shots]]
        else:
            fitting = [(p["question"], lines) for p in load_gsm8k(train_path)
                       if len(lines := solution_lines(p["solution"], p["answer"])) <= max_steps]
            if len(fitting) < n_shots:
                raise ValueError(f"only {len(fitting)} solutions in {train_path} fit in max_steps={max_steps}; "
                                 f"{n_shots} shots asked")
            shots = random.Random(seed).sample(fitting, n_shots)
        self.header = "".join(self._question(q) + "\n".join(lines) + "\n\n" for q, lines in shots)

    @staticmethod
    def _question(question: str) -> str:
        return f"Question: {question.strip()}\nAnswer:\n"

    def initial_state(self, problem: Any) -> dict[str, Any]:
        """From a loaded problem, a raw record (answer with "#### N") or a bare question (no gold)."""
        if isinstance(problem, str) and problem.strip():
            return {"question": problem, "gold": None, "steps": []}
        if not (isinstance(problem, dict) and isinstance(problem.get("question"), str)):
            raise ValueError(f"a gsm8k problem is a question string or a dict with 'question', got {problem!r}")
        gold = problem.get("answer")
        if gold is not None and (gold := extract_answer(str(gold))) is None:
            raise ValueError(f"the gold answer {problem['answer']!r} is not a number")
        return {"question": problem["question"], "gold": gold, "steps": []}

    def _at_last_step(self, state: dict[str, Any]) -> bool:
        return len(state["steps"]) == self.max_steps - 1

    def prompt(self, state: dict[str, Any]) -> str:
        lead = "The answer is" if self._at_last_step(state) else ""
        return f"{INSTRUCTION}\n\n{self.header}{self.describe(state)}{lead}"

    def describe(self, state: dict[str, Any]) -> str:
        return self._question(state["question"]) + "".join(f"{s}\n" for s in state["steps"])

    def legal_actions(self, state: dict[str, Any]) -> list[str] | None:
        return None

    def step(self, state: dict[str, Any], action: str) -> dict[str, Any]:
        line = " ".join(action.split())  # one step is one line
        if not line:
            raise ValueError("an empty step")
        if self._at_last_step(state) and not _MARKER.search(line):
            line = f"The answer is {line}"  # the prompt ended in "The answer is"
        return {**state, "steps": [*state["steps"], line]}

    def is_terminal(self, state: dict[str, Any]) -> bool:
        return bool(state["steps"] and _MARKER.search(state["steps"][-1]))

    def answer(self, state: dict[str, Any]) -> str | None:
        return extract_answer(state["steps"][-1]) if self.is_terminal(state) and state["steps"] else None

    def is_solved(self, state: dict[str, Any]) -> bool:
        return answers_match(self.answer(state), state["gold"])

    def reward(self, state: dict[str, Any]) -> float:
        return 1.0 if self.is_solved(state) else 0.0

    def self_eval_prompt(self, state: dict[str, Any], action: str) -> str:
        return (f"{self.describe(state)}New step: {' '.join(action.split())}\n"
                "Is the new step correct? Answer Yes or No.\nAnswer:")
