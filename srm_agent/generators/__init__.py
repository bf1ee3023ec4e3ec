"""Generators: propose candidate actions with log-probabilities, and score given ones (``base.Generator``).

``TransformersGenerator`` runs any Hugging Face causal LM in-process; ``from_langchain`` adapts a
LangChain ``HuggingFacePipeline`` or ``ChatHuggingFace`` built on one.
"""

from srm_agent.generators.base import Generation, Generator, Usage
from srm_agent.generators.hf import TransformersGenerator, common_prefix_length, from_langchain

__all__ = ["Generation", "Generator", "TransformersGenerator", "Usage", "common_prefix_length", "from_langchain"]
