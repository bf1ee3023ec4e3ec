"""Blocksworld (PlanBench's 4-operator domain, RAP's English) as a search task, with loaders and a generator."""

from srm_tasks.blocksworld.english import action_text, facts_text, parse_action
from srm_tasks.blocksworld.pddl_files import load_pddl_folder, load_split, read_pddl_problem
from srm_tasks.blocksworld.problems import (block_range_arg, canonical_key, generate_problems, problem_facts, steps_range_arg,
                                        validate_plan)
from srm_tasks.blocksworld.prompts import default_pool, load_prompt_pool
from srm_tasks.blocksworld.task import BlocksworldTask

__all__ = ["BlocksworldTask", "action_text", "block_range_arg", "canonical_key", "default_pool", "facts_text",
           "generate_problems", "load_pddl_folder", "load_prompt_pool", "load_split", "parse_action",
           "problem_facts", "read_pddl_problem", "steps_range_arg", "validate_plan"]
