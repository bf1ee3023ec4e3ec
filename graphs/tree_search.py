"""The composable search graph: ``propose`` → ``srm`` (or another evaluator) → ``expand``, looped by a strategy.

The search lives in ``srm_agent.search`` (strategies, evaluators, proposers and world models as plug-ins;
the tree grown by deltas); this module is its entry point for agent apps and LangGraph Studio.
"""

from __future__ import annotations

import os

from srm_agent.search import build_tree_search, run_search
from srm_agent.search.graph import SearchState

__all__ = ["SearchState", "build_tree_search", "run_search", "studio_graph"]


def studio_graph():
    """The graph `langgraph dev` serves: embedded models, task and options from the environment.

    ``SRM_TASK`` is a registered domain (``blocksworld``, ``gsm8k``, ``reach_number``, the default) or a task
    factory as ``module:attribute``; ``SRM_STRATEGY``, ``SRM_EVALUATOR``, ``SRM_K`` and ``SRM_MAX_DEPTH`` set
    the search; ``SRM_GENERATOR`` the generator (``srm_agent.generators.spec``: a folder, or ``openai:MODEL@URL``
    for a server; default: the embedded one); ``SRM_PATH`` an SRM checkpoint (default: the shipped SRM);
    ``REDIS_URL`` a shared score cache.
    """
    import importlib

    from srm_agent.cache import RedisScoreCache
    from srm_agent.embedded import default_srm
    from srm_agent.generators.spec import generator_from_spec
    from srm_agent.srm import SpeculativeRewardModel
    from srm_tasks import domain_names, get_spec

    name = os.environ.get("SRM_TASK", "reach_number")
    if name in domain_names():
        spec = get_spec(name)
        task = spec.make_task(spec.defaults())
    else:
        module_name, _, attribute = name.partition(":")
        task = getattr(importlib.import_module(module_name), attribute)()
    evaluator = os.environ.get("SRM_EVALUATOR", "srm")
    srm = None
    if evaluator == "srm":
        srm = SpeculativeRewardModel.from_pretrained(os.environ["SRM_PATH"]) if os.environ.get("SRM_PATH") \
            else default_srm()
    cache = RedisScoreCache(os.environ["REDIS_URL"]) if os.environ.get("REDIS_URL") else None
    return build_tree_search(task, generator_from_spec(os.environ.get("SRM_GENERATOR")), srm, strategy=os.environ.get("SRM_STRATEGY", "bfs"),
                             evaluator=evaluator, k=int(os.environ.get("SRM_K", "4")),
                             max_depth=int(os.environ.get("SRM_MAX_DEPTH", "5")), cache=cache)
