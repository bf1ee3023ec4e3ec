"""One string names a generator, so every entry point (evals.run, the CLI, the Studio graph) takes the same.

- ``""``, ``None`` or ``"embedded"``: the embedded SmolLM2-135M-Instruct (in-process);
- ``"openai:MODEL@URL"``: ``MODEL`` behind an OpenAI-compatible server at ``URL`` (``…/v1``);
  ``"openai:URL"`` takes the one model the server lists; the API key comes from
  ``$OPENAI_API_KEY`` (none: local servers ignore it);
- anything else: a local model folder or a hub id, run in-process by transformers.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from srm_agent.errors import InputError
from srm_agent.generators.base import Generator

EMBEDDED = "embedded"
SERVER_PREFIX = "openai:"
_SERVER = re.compile(r"^(?:(?P<model>.+?)@)?(?P<url>https?://\S+)$")
SPEC_HELP = ("'embedded' (default), a model folder or hub id (in-process), or openai:MODEL@URL for an "
             "OpenAI-compatible server (openai:URL takes the one model it serves)")


def parse_server_spec(spec: str) -> tuple[str | None, str]:
    """``(model or None, base_url)`` of an ``openai:[MODEL@]URL`` spec; InputError names a bad one."""
    match = _SERVER.match(spec[len(SERVER_PREFIX):]) if spec.startswith(SERVER_PREFIX) else None
    if match is None:
        raise InputError("generator", f"expected openai:MODEL@URL such as "
                                      f"openai:Qwen/Qwen2.5-0.5B@http://127.0.0.1:8000/v1, got {spec!r}")
    return match["model"], match["url"]


def generator_from_spec(spec: str | Path | None = None, *, device: Any = None, chat: bool = False,
                        gguf_file: str | None = None, trust_remote_code: bool = False,
                        **server_options: Any) -> Generator:
    """The generator a spec string names (module docstring); ``server_options`` go to a server generator."""
    text = "" if spec is None else str(spec).strip()
    if text in ("", EMBEDDED):
        from srm_agent.embedded import default_generator

        return default_generator(device=device, chat=chat)
    if text.startswith(SERVER_PREFIX):
        model, url = parse_server_spec(text)
        if chat:
            raise InputError("chat", "a server generator continues raw prompts (the completions API, which gives "
                                     "prompt log-probs); apply the chat template to the prompt yourself")
        from srm_agent.generators.openai_compat import OpenAICompatibleGenerator

        return OpenAICompatibleGenerator(url, model, api_key=os.environ.get("OPENAI_API_KEY"), **server_options)
    from srm_agent.generators.hf import TransformersGenerator

    return TransformersGenerator.from_pretrained(text, gguf_file=gguf_file, device=device, chat=chat,
                                                 trust_remote_code=trust_remote_code)
