"""llm-reasoners' GSM8K prompts (RAP's sub-questions, its "useful?" question, the CoT pool), or built-in ones.

A prompt folder holds llm-reasoners' files unchanged: ``prompt_pool.json`` (RAP's instruction, a pool of
interactive examples, the prefixes ``Question {idx}: {question}``, ``Question {idx}.{sub_idx}:``,
``Answer {idx}.{sub_idx}:`` and ``Now we can answer the question:``), ``useful_examples.json`` (the few-shot
"Is the new question useful?" prompt and its prefixes) and, optionally, ``cot.json`` (the CoT pool and its
``Q: {QUESTION}\\nA:`` prefix). RAP samples 4 interactive examples per problem; so does CoT from its pool.

The built-in prompts are this project's own text in the same format, so the search runs on a machine without
the shared data; they have no CoT pool (CoT then keeps the step-wise GSM8K task).
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path

BUILT_IN = "built-in"


@dataclass(frozen=True)
class RAPPrompts:
    source: str  # the folder, or "built-in"
    instruction: str
    examples: tuple[str, ...]  # interactive examples, "{idx}" where the example's number goes
    question_prefix: str
    subquestion_prefix: str
    answer_prefix: str
    overall_question_prefix: str
    useful_input: str  # the "useful?" few-shot prompt, then its prefixes ("{}" where the sub-question number goes)
    useful_question_prefix: str
    useful_subquestion_prefix: str
    useful_new_prefix: str
    useful_prefix: str
    cot_pool: tuple[str, ...] = ()
    cot_prefix: str = ""


INSTRUCTION = ('Break the question into sub-questions and answer each one in a full sentence that ends with '
               '"The answer is N.". When the original question can be answered, start the sub-question with '
               '"Now we can answer the question: ".')
EXAMPLES = (  # written for this project
    "Question {idx}: Mia has 3 boxes with 12 pencils in each box. She gives away 10 pencils. How many pencils does "
    "she have left?\nQuestion {idx}.1: How many pencils does Mia start with?\nAnswer {idx}.1: She has 3 boxes of 12 "
    "pencils, so 3 * 12 = 36 pencils. The answer is 36.\nQuestion {idx}.2: Now we can answer the question: How many "
    "pencils does she have left?\nAnswer {idx}.2: She gives away 10 of 36, so 36 - 10 = 26 are left. The answer is 26.",
    "Question {idx}: A bus ticket costs $2.50 and Omar rides the bus twice a day for 4 days. How much does he spend "
    "on tickets?\nQuestion {idx}.1: How many times does Omar ride the bus?\nAnswer {idx}.1: Twice a day for 4 days "
    "is 2 * 4 = 8 rides. The answer is 8.\nQuestion {idx}.2: Now we can answer the question: How much does he spend "
    "on tickets?\nAnswer {idx}.2: 8 rides at $2.50 cost 8 * 2.50 = 20 dollars. The answer is 20.",
    "Question {idx}: A garden has 45 tulips. One third of them are red and the rest are yellow. How many yellow "
    "tulips are there?\nQuestion {idx}.1: How many red tulips are there?\nAnswer {idx}.1: One third of 45 is "
    "45 / 3 = 15. The answer is 15.\nQuestion {idx}.2: Now we can answer the question: How many yellow tulips are "
    "there?\nAnswer {idx}.2: The rest are yellow, so 45 - 15 = 30. The answer is 30.",
    "Question {idx}: Ben reads 20 pages a day. His book has 140 pages and he has read 60. How many more days does "
    "he need?\nQuestion {idx}.1: How many pages are left?\nAnswer {idx}.1: 140 - 60 = 80 pages are left. The answer "
    "is 80.\nQuestion {idx}.2: Now we can answer the question: How many more days does he need?\nAnswer {idx}.2: At "
    "20 pages a day, 80 / 20 = 4 days. The answer is 4.",
)
USEFUL_INPUT = (
    "Given a question and some sub-questions, decide whether the last sub-question helps to answer the question. "
    "Output 'Yes' or 'No', and a reason.\n\n"
    "Question 1: Mia has 3 boxes with 12 pencils in each box. She gives away 10 pencils. How many pencils does she "
    "have left?\nNew question 1.1: How many pencils does Mia start with?\nIs the new question useful? Yes. We need "
    "it to know how many are left.\n\n"
    "Question 2: A garden has 45 tulips. One third of them are red and the rest are yellow. How many yellow tulips "
    "are there?\nQuestion 2.1: How many red tulips are there?\nNew question 2.2: What colour is the fence?\n"
    "Is the new question useful? No. The question says nothing about a fence.\n\n")


def built_in() -> RAPPrompts:
    return RAPPrompts(BUILT_IN, INSTRUCTION, EXAMPLES, "Question {idx}: {question}", "Question {idx}.{sub_idx}:",
                      "Answer {idx}.{sub_idx}:", "Now we can answer the question:", USEFUL_INPUT, "Question 3: ",
                      "Question 3.{}:", "New question 3.{}:", "Is the new question useful?")


def _read(path: Path, keys: tuple[str, ...]) -> dict:
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read llm-reasoners GSM8K prompts: {exc}") from None
    missing = [key for key in keys if key not in raw]
    if not isinstance(raw, dict) or missing:
        raise ValueError(f"{path}: not llm-reasoners' format (missing {', '.join(missing) or 'an object'})")
    return raw


@functools.lru_cache(maxsize=8)
def load_rap_prompts(source: str | Path = BUILT_IN) -> RAPPrompts:
    """The prompts in an llm-reasoners folder (see the module docstring), or the built-in ones."""
    if str(source) == BUILT_IN:
        return built_in()
    folder = Path(source)
    if not folder.is_dir():
        raise ValueError(f"{folder}: not a folder of llm-reasoners GSM8K prompts (prompt_pool.json, "
                         "useful_examples.json, cot.json), nor 'built-in'")
    pool = _read(folder / "prompt_pool.json", ("instruction", "interactive_examples", "question_prefix",
                                               "subquestion_prefix", "overall_question_prefix", "answer_prefix"))
    useful = _read(folder / "useful_examples.json", ("input", "question_prefix", "subquestion_prefix",
                                                     "new_subquestion_prefix", "useful_prefix"))
    cot = _read(folder / "cot.json", ("cot_pool", "prefix")) if (folder / "cot.json").is_file() else \
        {"cot_pool": [], "prefix": ""}
    return RAPPrompts(str(folder), pool["instruction"], tuple(pool["interactive_examples"]), pool["question_prefix"],
                      pool["subquestion_prefix"], pool["answer_prefix"], pool["overall_question_prefix"],
                      useful["input"], useful["question_prefix"], useful["subquestion_prefix"],
                      useful["new_subquestion_prefix"], useful["useful_prefix"], tuple(cot["cot_pool"]), cot["prefix"])
