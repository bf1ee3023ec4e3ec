"""srm-agent: a Speculative Reward Model that prunes an LLM's candidate actions during tree search.

The decision rule imports nothing heavy; the model wrappers (torch, transformers) and the
LangChain/LangGraph pieces load on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

from srm_agent.errors import CheckpointError, InputError, SRMAgentError
from srm_agent.rule import Candidate, Decision, Verdict, speculative_verify

_LAZY = {
    "SpeculativeRewardModel": "srm_agent.srm",
    "Generator": "srm_agent.generators",
    "Generation": "srm_agent.generators",
    "Usage": "srm_agent.generators",
    "TransformersGenerator": "srm_agent.generators",
    "from_langchain": "srm_agent.generators",
    "default_generator": "srm_agent.embedded",
    "default_srm": "srm_agent.embedded",
    "InMemoryScoreCache": "srm_agent.cache",
    "RedisScoreCache": "srm_agent.cache",
    "verify_candidates": "srm_agent.verify",
    "make_srm_node": "srm_agent.node",
    "make_srm_tool": "srm_agent.tool",
}

__all__ = ["Candidate", "CheckpointError", "Decision", "InputError", "SRMAgentError", "Verdict",
           "speculative_verify", *_LAZY]
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'srm_agent' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
