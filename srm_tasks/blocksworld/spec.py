"""Blocksworld's registry entry: RAP split files, PlanBench PDDL folders or generated problems; RAP's LLM world
model as ``--world-model llm``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from srm_tasks.blocksworld.llm_world import llm_world
from srm_tasks.blocksworld.pddl_files import load_pddl_folder, load_split
from srm_tasks.blocksworld.problems import block_range_arg, canonical_key, generate_problems, steps_range_arg
from srm_tasks.blocksworld.task import BlocksworldTask
from srm_tasks.registry import Option, Options, TaskSpec, register


def make_task(options: Options) -> BlocksworldTask:
    prompts = options.get("prompts") or "built-in"
    return BlocksworldTask(prompt_pool=None if prompts == "built-in" else prompts, seed=options.get("seed", 0))


def load_problems(options: Options) -> list[dict[str, Any]]:
    data = options.get("data")
    if data is None:
        return generate_problems(options["generate"], blocks=options["blocks"], seed=options.get("seed", 0),
                                 steps=options["steps"])
    return load_pddl_folder(data) if Path(data).is_dir() else load_split(data)


SPEC = register(TaskSpec(
    name="blocksworld",
    summary="PlanBench's 4-operator Blocksworld in RAP's English",
    make_task=make_task,
    load_problems=load_problems,
    problem_key=canonical_key,
    default_depth=6,
    problem_depth=lambda problem: problem.get("optimal_length") if isinstance(problem, dict) else None,
    world_models={"llm": llm_world},
    data_help="a RAP split JSON or a folder of PlanBench PDDL files (default: generated problems)",
    options=(
        Option("prompts", "a RAP prompt-pool JSON (llm-reasoners' pool_prompt_v1.json), or built-in", "built-in",
               metavar="JSON"),
        Option("generate", "without --data: how many problems to generate", 4, int, "N"),
        Option("blocks", "without --data: blocks per generated problem, N or N-M", (3, 4), block_range_arg, "N-M"),
        Option("steps", "without --data: optimal plan length, N or N-M (RAP's splits: 2, 4, ..., 12)", (2, 4),
               steps_range_arg, "N-M"),
    ),
))
