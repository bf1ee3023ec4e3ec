"""The search domains (Blocksworld, GSM8K, a toy task), each registered once for evals/ and trainer/.

Each domain implements ``srm_agent.search.task.Task``; ``srm_tasks.registry`` finds one by name.
"""

from srm_tasks.registry import (Option, TaskSpec, add_domain_arguments, domain_names, domain_options, get_spec,
                                register)

__all__ = ["Option", "TaskSpec", "add_domain_arguments", "domain_names", "domain_options", "get_spec", "register"]
