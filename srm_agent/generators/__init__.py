"""Generators: propose candidate actions with log-probabilities, and score given ones (``base.Generator``).

``TransformersGenerator`` runs any Hugging Face causal LM in-process; ``from_langchain`` adapts a
LangChain ``HuggingFacePipeline`` or ``ChatHuggingFace`` built on one; ``OpenAICompatibleGenerator``
talks to a model behind an OpenAI-compatible server (vLLM, llama.cpp …; needs the ``server`` extra).
``generator_from_spec`` turns one string into any of them.
"""

from typing import Any

from srm_agent.generators.base import Generation, Generator, Usage
from srm_agent.generators.hf import TransformersGenerator, common_prefix_length, from_langchain
from srm_agent.generators.spec import generator_from_spec

__all__ = ["Generation", "Generator", "OpenAICompatibleGenerator", "TransformersGenerator", "Usage",
           "common_prefix_length", "from_langchain", "generator_from_spec"]


def __getattr__(name: str) -> Any:
    if name == "OpenAICompatibleGenerator":  # imports the optional openai client only when asked for
        from srm_agent.generators.openai_compat import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator
    raise AttributeError(f"module 'srm_agent.generators' has no attribute {name!r}")
