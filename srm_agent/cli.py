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
import unicodedata
from collections.abc import Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from srm_agent.console import HelpFormatter, option_hint, positive_int, quiet_transformers, run_command
from srm_agent.errors import InputError, SRMAgentError
from srm_agent.schemas import ProposeRequest, ScoreRequest, TaskProposeRequest, describe_validation_error
from srm_agent.sources import model_source

log = logging.getLogger("srm_agent")
M = TypeVar("M", bound=BaseModel)


class UsageError(Exception):
    """Bad input on the command line or stdin: reported in one line, exit status 2."""


def _read_json(what: str) -> Any:
    """The JSON value on stdin; anything else is a one-line UsageError."""
    if sys.stdin is None or sys.stdin.isatty():
        raise UsageError(f"expects a JSON {what} on stdin (see --help)")
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
    return data


def _validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise UsageError(describe_validation_error(exc)) from None


def _json(obj: Any, args: argparse.Namespace) -> str:
    """Strict JSON: a NaN or infinity in our own output is a bug, so it raises instead of printing ``NaN``."""
    return json.dumps(obj, indent=None if args.compact else 2, allow_nan=False)


def _importing_models(args: argparse.Namespace) -> None:
    """Called just before torch and transformers load: a command that fails earlier never waits for them."""
    if not args.debug:
        quiet_transformers()


def _load_srm(args: argparse.Namespace):
    if args.srm is None:
        _importing_models(args)
        from srm_agent.embedded import default_srm

        return default_srm(device=args.device)
    with option_hint("--srm", "the shipped Blocksworld SRM"):
        model_source(args.srm, "SRM checkpoint")  # a bad path or an offline hub id fails before torch loads
        _importing_models(args)
        from srm_agent.srm import SpeculativeRewardModel

        return SpeculativeRewardModel.from_pretrained(args.srm, device=args.device,
                                                      trust_remote_code=args.trust_remote_code)


def _load_generator(args: argparse.Namespace):
    from srm_agent.generators.spec import SERVER_PREFIX, generator_from_spec

    spec = args.generator
    with option_hint("--generator", "the embedded SmolLM2-135M-Instruct"):
        if spec is not None and not spec.startswith(SERVER_PREFIX) and spec != "embedded":
            model_source(spec, "causal LM", gguf_file=args.gguf_file)  # fails before torch loads
        _importing_models(args)
        return generator_from_spec(spec, device=args.device, chat=args.chat, gguf_file=args.gguf_file,
                                   trust_remote_code=args.trust_remote_code)


def _make_cache(args: argparse.Namespace):
    if not args.redis_url:
        return None
    from srm_agent.cache import RedisScoreCache

    return RedisScoreCache(args.redis_url, namespace=args.namespace, ttl=args.ttl)


TABLE_LEGEND = """\
ok     accepted (yes) or pruned (no); accepted candidates are expanded in rank order
p_llm  the generator's probability of the candidate (per-token log-prob, softmax over the K)
q_srm  the SRM's probability of the candidate (softmax of its logits over the K)
SR     speculative reward q_srm / p_llm: accepted with probability min(1, SR)
RC     reward consistency 1 / (1 + |SR - 1|): 1 where the SRM agrees with the generator
score  SR**alpha * RC**(1 - alpha): the rank of the accepted ones"""
TEXT_WIDTH = 60


def printable(text: str, width: int = TEXT_WIDTH) -> str:
    """Model text made safe for a terminal: control and format characters (ANSI escapes, newlines,
    bidi overrides) written as escapes, cut to ``width`` characters."""
    out = "".join(ch if ch == " " or unicodedata.category(ch)[0] not in "CZ" else ch.encode("unicode_escape")
                  .decode("ascii") for ch in text)
    return out if len(out) <= width else out[: width - 1] + "…"


def _table(verdict: dict[str, Any], *, shipped_srm: bool) -> str:
    rank = {i: n + 1 for n, i in enumerate(verdict["order"])}
    lines = [f"{'rank':>4} {'ok':>3} {'p_llm':>6} {'q_srm':>6} {'SR':>7} {'RC':>5} {'score':>6}  text"]
    for i, d in enumerate(verdict["decisions"]):
        lines.append(f"{rank.get(i, '-'):>4} {'yes' if d['accepted'] else 'no':>3} {d['p_llm']:6.3f} "
                     f"{d['q_srm']:6.3f} {d['sr']:7.3f} {d['rc']:5.2f} {d['score']:6.3f}  {printable(d['text'])}")
    if verdict["fallback"]:
        lines.append("nothing was accepted: the residual fallback picked the ranked candidate")
    lines += ["", TABLE_LEGEND]
    if shipped_srm:
        lines.append("The shipped SRM was trained to judge Blocksworld moves only; pass --srm for other tasks.")
    return "\n".join(lines)


def cmd_score(args: argparse.Namespace) -> None:
    request = _validate(ScoreRequest, _read_json(ScoreRequest.__name__))
    srm = _load_srm(args)
    from srm_agent.tool import run_request

    if not srm.head_trained:
        print("note: this SRM's scoring head is untrained, so its verdicts are not meaningful yet; "
              "pass --srm with a trained checkpoint", file=sys.stderr)
    verdict = run_request(srm, request, cache=_make_cache(args))
    print(_table(verdict, shipped_srm=args.srm is None) if args.table else _json(verdict, args))


def _print_usage(usage) -> None:
    print(f"generator: {usage.calls} call(s), {usage.prompt_tokens} prompt tokens, {usage.generated_tokens} "
          "generated tokens", file=sys.stderr)


def _candidates(generation) -> list[dict[str, Any]]:
    return [{"text": c.text, "logprob": c.logprob, "num_tokens": c.num_tokens} for c in generation]


def _task_choices(task_name: str, request: TaskProposeRequest) -> tuple[str, str, list[str]]:
    """(prompt, state the SRM reads, legal actions) for a problem of a registered task, after ``steps``."""
    from srm_tasks import domain_names, get_spec

    if task_name not in domain_names():
        raise UsageError(f"--task: unknown task {task_name!r}; choose from {', '.join(domain_names())}")
    spec = get_spec(task_name)
    task = spec.make_task(spec.defaults())
    try:
        state = task.initial_state(request.problem)
    except ValueError as exc:
        raise UsageError(f"problem: {exc}") from None
    for i, action in enumerate(request.steps):
        try:
            state = task.step(state, action)
        except ValueError as exc:
            raise UsageError(f"steps[{i}]: {exc}") from None
    actions = task.legal_actions(state)
    if actions is None:
        raise UsageError(f"--task {task_name}: its actions are free text, not a list; omit --task and give a prompt")
    if not actions:
        raise UsageError(f"--task {task_name}: no legal action in this state")
    return task.prompt(state), task.describe(state), actions


def cmd_propose(args: argparse.Namespace) -> None:
    if args.task:
        prompt, state, actions = _task_choices(args.task, _validate(TaskProposeRequest, _read_json(
            f"{{problem, steps?}} for --task {args.task}")))
        lead = "" if prompt[-1:].isspace() else " "  # each action continues the prompt as its next word
        scored = _load_generator(args).score_choices(prompt, [lead + a for a in actions])
        _print_usage(scored.usage)
        candidates = [{**c, "text": a} for c, a in zip(_candidates(scored), actions)]
        print(_json({"state": state, "candidates": candidates}, args))
        return
    request = _validate(ProposeRequest, _read_json(ProposeRequest.__name__))
    generator = _load_generator(args)
    proposed = generator.propose(request.prompt, request.k, temperature=request.temperature,
                                 max_new_tokens=request.max_new_tokens, stop=request.stop, seed=request.seed)
    kept = [c for c in proposed if c.text.strip()]
    if not kept:
        raise SRMAgentError(f"the generator proposed {len(proposed)} empty continuation(s); raise max_new_tokens "
                            "or change the prompt or stop strings")
    if len(kept) < len(proposed):
        print(f"note: dropped {len(proposed) - len(kept)} empty continuation(s)", file=sys.stderr)
    _print_usage(proposed.usage)
    print(_json({"state": request.state or request.prompt, "candidates": _candidates(kept)}, args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m srm_agent", description=__doc__, formatter_class=HelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--device", default=None, help="cpu, cuda, cuda:1 … (default: CUDA when available)")
    common.add_argument("--trust-remote-code", action="store_true",
                        help="allow a checkpoint's own Python code to run (off by default)")
    common.add_argument("--compact", action="store_true", help="one-line JSON output")
    common.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    score = sub.add_parser(
        "score", parents=[common], formatter_class=HelpFormatter,
        help="verify candidates: JSON request on stdin, JSON verdict on stdout",
        description="Read {state, candidates:[{text, logprob, num_tokens}], alpha?, tau?, mode?, threshold?,\n"
                    "ratio?, seed?} on stdin; write the verdict (per-candidate decisions, order, fallback).\n"
                    "The default SRM, the shipped one, was trained to judge Blocksworld moves only.")
    score.add_argument("--srm", default=None, metavar="PATH",
                       help="SRM checkpoint folder, or a hub id when the hub is reachable (default: the shipped "
                            "SRM, srm_agent/checkpoints/blocksworld-srm, trained on Blocksworld moves)")
    score.add_argument("--redis-url", default=os.environ.get("REDIS_URL"), metavar="URL",
                       help="share SRM scores across processes and runs through this Redis (default: $REDIS_URL; "
                            "unset: no shared cache)")
    score.add_argument("--namespace", default="srm", help="Redis key prefix")
    score.add_argument("--ttl", type=positive_int, default=None, metavar="SECONDS",
                       help="Redis entry lifetime (default: kept until evicted)")
    score.add_argument("--table", action="store_true", help="print a readable table with a legend instead of JSON")
    score.set_defaults(func=cmd_score)

    propose = sub.add_parser(
        "propose", parents=[common], formatter_class=HelpFormatter,
        help="candidates with log-probs: JSON on stdin, a request for 'score' on stdout",
        description="Read {prompt, state?, k=4, temperature=0.8, max_new_tokens=48, stop=['\\n'], seed?} on stdin\n"
                    "and sample K continuations; or, with --task, read {problem, steps?} and score every legal\n"
                    "next action of that problem with the generator. Either way, write a request for 'score'.")
    propose.add_argument("--task", default=None, metavar="NAME",
                         help="a task from the srm_tasks registry, e.g. blocksworld: score its legal actions "
                              "instead of sampling free text")
    propose.add_argument("--generator", default=None, metavar="SPEC",
                         help="the generator: 'embedded' (default, SmolLM2-135M-Instruct), a causal LM folder or hub id "
                              "(in-process), or openai:MODEL@URL for an OpenAI-compatible server (vLLM, llama.cpp)")
    propose.add_argument("--gguf-file", default=None, metavar="FILE", help="a GGUF file inside --generator to load")
    propose.add_argument("--chat", action="store_true", help="wrap the prompt in the model's chat template")
    propose.set_defaults(func=cmd_propose)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.debug else logging.WARNING,
                        format="%(levelname)s: %(message)s", stream=sys.stderr)
    return run_command(lambda: args.func(args), debug=args.debug, usage_errors=(UsageError, InputError))
