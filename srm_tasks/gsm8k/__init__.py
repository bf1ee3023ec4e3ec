"""GSM8K (openai/grade-school-math): loading, numeric answers, and the step-wise search task."""

from srm_tasks.gsm8k.answers import answers_match, extract_answer
from srm_tasks.gsm8k.data import load_gsm8k, load_gsm8k_hub
from srm_tasks.gsm8k.task import BUILTIN_SHOTS, INSTRUCTION, GSM8KTask, solution_lines

__all__ = ["BUILTIN_SHOTS", "INSTRUCTION", "GSM8KTask", "answers_match", "extract_answer", "load_gsm8k",
           "load_gsm8k_hub", "solution_lines"]
