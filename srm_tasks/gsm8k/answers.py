"""GSM8K answers: numbers as GSM8K writes them, the final answer a text states, and numeric equality."""

from __future__ import annotations

import re
from decimal import Decimal
from fractions import Fraction

# A number as GSM8K text writes it: optional sign and "$", thousands commas, decimals, a simple fraction.
_NUMBER = re.compile(r"([-−]?)\s*\$?\s*((?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?|\.\d+)(?:\s*/\s*([1-9]\d*))?")
# Where a final answer is stated: gold "#### N", "The answer is N" (RAP/CoT), "A: N" (OpenAI's model samples).
ANSWER_MARKER = re.compile(r"####|\banswer is\b:?|^A:", re.IGNORECASE | re.MULTILINE)
CALCULATOR_NOTE = re.compile(r"<<[^>]*>>")  # GSM8K's calculator annotations, e.g. <<16-3-4=9>>
# A sentence break inside a line, but not after a title or an initial ("Mr. Lucian", "John F. Kennedy").
SENTENCE_END = re.compile(r"(?<=[.!?])(?<!\bMr\.)(?<!\bMrs\.)(?<!\bMs\.)(?<!\bDr\.)(?<!\b[A-Z]\.)\s+(?=[A-Z$])")


def _parse(match: re.Match[str]) -> Fraction:
    value = Fraction(match.group(2).replace(",", "")) / int(match.group(3) or 1)
    return -value if match.group(1) else value


def canonical_number(value: Fraction) -> str:
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


def parse_number(text: str) -> Fraction | None:
    """The value of a text that is one number and nothing else ("$1,234.50", "-3", "3/4")."""
    match = _NUMBER.fullmatch(text.strip().rstrip("."))
    return _parse(match) if match else None


def extract_answer(text: str) -> str | None:
    """The final numeric answer stated in ``text``, canonical, or None when none is stated.

    The last "#### N", "The answer is N" or "A: N" line wins; like RAP's extractor, an equation
    there ("The answer is 2 + 3 = 5") gives what follows the last "=". A text that is just a number
    is its own answer. No guessing from the last number in free text: an unfinished chain has none.
    """
    text = CALCULATOR_NOTE.sub("", text)
    markers = list(ANSWER_MARKER.finditer(text))
    if not markers:
        value = parse_number(text)
        return None if value is None else canonical_number(value)
    tail = text[markers[-1].end():].split("\n", 1)[0].rsplit("=", 1)[-1]
    match = _NUMBER.search(tail)
    return canonical_number(_parse(match)) if match else None


def answers_match(pred: str | None, gold: str | None) -> bool:
    """Whether two answers are the same number ("18.0" == "18", "1,000" == "1000", "$5.50" == "5.5").

    Exact (rational) equality: GSM8K golds are integers, so a tolerance would only accept
    rounded wrong answers. Non-numeric answers compare as stripped strings.
    """
    if pred is None or gold is None:
        return False
    a, b = parse_number(pred), parse_number(gold)
    if a is None or b is None:
        return pred.strip() == gold.strip()
    return a == b

