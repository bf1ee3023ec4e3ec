"""GSM8K (openai/grade-school-math): loading, numeric answers, the step-wise search task, RAP's sub-questions."""

from srm_tasks.gsm8k.answers import answers_match, extract_answer
from srm_tasks.gsm8k.cot import GSM8KCoTTask
from srm_tasks.gsm8k.data import load_gsm8k, load_gsm8k_hub
from srm_tasks.gsm8k.rap import GSM8KRAPTask, SubQuestionProposer
from srm_tasks.gsm8k.rap_prompts import RAPPrompts, load_rap_prompts
from srm_tasks.gsm8k.rap_world import SubAnswerWorld
from srm_tasks.gsm8k.task import BUILTIN_SHOTS, INSTRUCTION, GSM8KTask, solution_lines

__all__ = ["BUILTIN_SHOTS", "INSTRUCTION", "GSM8KCoTTask", "GSM8KRAPTask", "GSM8KTask", "RAPPrompts", "SubAnswerWorld",
           "SubQuestionProposer", "answers_match", "extract_answer", "load_gsm8k", "load_gsm8k_hub", "load_rap_prompts",
           "solution_lines"]
