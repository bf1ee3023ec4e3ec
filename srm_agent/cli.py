"""``python -m srm_agent``: propose candidates with a generator, verify them with an SRM.

Both commands read one JSON request on stdin and write JSON on stdout, so they compose:
``python -m srm_agent propose < request.json | python -m srm_agent score``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError

from srm_agent.console import quiet_transformers, run_command
from srm_agent.errors import InputError, SRMAgentError
from srm_agent.schemas import ProposeRequest, ScoreRequest, describe_validation_error

EMBEDDED = "embedded"
log = logging.getLogger("srm_agent")


class UsageError(Exception):
    """Bad input on the command line or stdin: reported in one line, exit status 2."""


def _read_request(model: type[BaseModel]) -> BaseModel:
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(f"expects a JSON {model.__name__} on stdin (see --help)")
    try:
        text = sys.stdin.read()
    except UnicodeDecodeError as exc:
        raise UsageError(f"stdin is not UTF-8 text (byte {exc.start}: {exc.reason})") from None
    if not text.strip():
        raise UsageError("stdin is empty; expected a JSON request")
    try:
        data = json.loads(text)
    except RecursionError:
        raise UsageError("stdin is not valid JSON: nested too deeply") from None
    except json.JSONDecodeError as exc:
        raise UsageError(f"stdin is not valid JSON: {exc}") from None
    except ValueError:  # int() refuses a number this long (a denial-of-service guard)
        raise UsageError(f"stdin is not valid JSON: a number has more than {sys.get_int_max_str_digits()} "
                         "digits") from None
    if not isinstance(data, dict):
        raise UsageError(f"the request must be a JSON object, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None


def _json(obj: Any, args: argparse.Namespace) -> str:
    """Strict JSON: a NaN or infinity in our own output is a bug, so it raises instead of printing ``NaN``."""
    return json.dumps(obj, indent=None if args.compact else 2, allow_nan=False)


def _load_srm(args: argparse.Namespace):
    from srm_agent.embedded import default_srm
    from srm_agent.srm import SpeculativeRewardModel

    if args.srm == EMBEDDED:
        return default_srm(device=args.device)
    return SpeculativeRewardModel.from_pretrained(args.srm, device=args.device,
                                                  trust_remote_code=args.trust_remote_code)


def _make_cache(args: argparse.Namespace):
    if not args.redis_url:
        return None
    from srm_agent.cache import RedisScoreCache

    return RedisScoreCache(args.redis_url, namespace=args.namespace, ttl=args.ttl)


def _table(verdict: dict[str, Any]) -> str:
    rank = {i: n + 1 for n, i in enumerate(verdict["order"])}
    lines = [f"{'rank':>4} {'ok':>3} {'p_llm':>6} {'q_srm':>6} {'SR':>7} {'RC':>5} {'score':>6}  text"]
    for i, d in enumerate(verdict["decisions"]):
        lines.append(f"{rank.get(i, '-'):>4} {'yes' if d['accepted'] else 'no':>3} {d['p_llm']:6.3f} "
                     f"{d['q_srm']:6.3f} {d['sr']:7.3f} {d['rc']:5.2f} {d['score']:6.3f}  {d['text'][:60]!r}")
    if verdict["fallback"]:
        lines.append("nothing was accepted: the residual fallback picked the ranked candidate")
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> None:
    from srm_agent.tool import run_request

    request = _read_request(ScoreRequest)
    srm = _load_srm(args)
    if not srm.head_trained:
        print("note: this SRM's scoring head is untrained, so its verdicts are not meaningful yet; "
              "pass --srm with a trained checkpoint", file=sys.stderr)
    verdict = run_request(srm, request, cache=_make_cache(args))
    print(_table(verdict) if args.table else _json(verdict, args))


def cmd_propose(args: argparse.Namespace) -> None:
    from srm_agent.embedded import default_generator
    from srm_agent.generators import TransformersGenerator

    request = _read_request(ProposeRequest)
    if args.generator == EMBEDDED:
        generator = default_generator(device=args.device, chat=args.chat)
    else:
        generator = TransformersGenerator.from_pretrained(args.generator, gguf_file=args.gguf_file,
                                                          device=args.device, chat=args.chat,
                                                          trust_remote_code=args.trust_remote_code)
    proposed = generator.propose(request.prompt, request.k, temperature=request.temperature,
                                 max_new_tokens=request.max_new_tokens, stop=request.stop, seed=request.seed)
    kept = [c for c in proposed if c.text.strip()]
    if not kept:
        raise SRMAgentError(f"the generator proposed {len(proposed)} empty continuation(s); raise max_new_tokens "
                            "or change the prompt or stop strings")
    if len(kept) < len(proposed):
        print(f"note: dropped {len(proposed) - len(kept)} empty continuation(s)", file=sys.stderr)
    usage = proposed.usage
    print(f"generator: {usage.calls} call, {usage.prompt_tokens} prompt tokens, {usage.generated_tokens} "
          "generated tokens", file=sys.stderr)
    out = {"state": request.state or request.prompt,
           "candidates": [{"text": c.text, "logprob": c.logprob, "num_tokens": c.num_tokens} for c in kept]}
    print(_json(out, args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m srm_agent", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when available)")
    common.add_argument("--trust-remote-code", action="store_true",
                        help="allow a checkpoint's own Python code to run (off by default)")
    common.add_argument("--compact", action="store_true", help="one-line JSON output")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = sub.add_parser(
        "score", parents=[common], help="verify candidates: JSON request on stdin, JSON verdict on stdout",
        description="Read {state, candidates:[{text, logprob, num_tokens}], alpha?, tau?, mode?, threshold?, "
                    "ratio?, seed?} on stdin; write the verdict (per-candidate decisions, order, fallback).")
    score.add_argument("--srm", default=EMBEDDED, metavar="PATH",
                       help="SRM checkpoint folder or hub id (default: the embedded MiniLM SRM)")
    score.add_argument("--redis-url", default=os.environ.get("REDIS_URL"),
                       help="share scores through Redis (default: $REDIS_URL; none: no cache)")
    score.add_argument("--namespace", default="srm", help="Redis key prefix (default: srm)")
    score.add_argument("--ttl", type=int, default=None, help="Redis entry lifetime in seconds (default: none)")
    score.add_argument("--table", action="store_true", help="print a readable table instead of JSON")
    score.set_defaults(func=cmd_score)

    propose = sub.add_parser(
        "propose", parents=[common], help="sample K candidates with log-probs: JSON on stdin, score request out",
        description="Read {prompt, state?, k=4, temperature=0.8, max_new_tokens=48, stop=['\\n'], seed?} on "
                    "stdin; write a request for 'score' with the sampled candidates.")
    propose.add_argument("--generator", default=EMBEDDED, metavar="PATH",
                         help="causal LM folder or hub id (default: the embedded SmolLM2-135M-Instruct)")
    propose.add_argument("--gguf-file", default=None, help="GGUF file inside --generator to load")
    propose.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    propose.set_defaults(func=cmd_propose)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    if not args.debug:
        quiet_transformers()
    return run_command(lambda: args.func(args), debug=args.debug, usage_errors=(UsageError, InputError))
