"""The SRM as a LangChain tool named ``speculative_reward``."""

from __future__ import annotations

import json
from typing import Any

from langchain_core.tools import StructuredTool
from pydantic import ValidationError

from srm_agent.cache import ScoreCache
from srm_agent.errors import InputError
from srm_agent.node import rule_params
from srm_agent.schemas import CandidateIn, ScoreRequest, describe_validation_error
from srm_agent.verify import Scorer, verify_candidates

DESCRIPTION = (
    "Verify candidate next actions with the Speculative Reward Model. Give the state (task and steps so far) "
    "and the candidates with their generator log-probabilities and token counts; get back, per candidate, "
    "whether it is accepted, its speculative reward (SR), reward consistency (RC) and score, plus 'order': "
    "the accepted candidates' indices, best first."
)
INVALID = "invalid speculative_reward input:"


def run_request(srm: Scorer, request: ScoreRequest, *, cache: ScoreCache | None = None,
                **rule: Any) -> dict[str, Any]:
    """Verify one validated request; its own rule fields override ``rule``."""
    params = rule_params(**{**rule, **request.rule_overrides()})
    candidates = [c.to_candidate() for c in request.candidates]
    return verify_candidates(srm, request.state, candidates, cache=cache, seed=request.seed, **params).to_dict()


def make_srm_tool(srm: Scorer, cache: ScoreCache | None = None, **rule: Any) -> StructuredTool:
    """A ``StructuredTool`` whose input is the JSON request of DESIGN §3 and whose output is the verdict JSON.

    Invalid input comes back as a message naming the bad field, so an agent can correct itself.
    """
    defaults = rule_params(**rule)

    def speculative_reward(state: str, candidates: list[CandidateIn], **overrides: Any) -> str:
        try:
            request = ScoreRequest(state=state, candidates=candidates, **overrides)
            verdict = run_request(srm, request, cache=cache, **defaults)
        except ValidationError as exc:
            return explain(exc)
        except InputError as exc:
            return f"{INVALID} {exc}"
        return json.dumps(verdict, allow_nan=False)

    def explain(exc: ValidationError) -> str:
        return f"{INVALID} {describe_validation_error(exc)}"

    return StructuredTool.from_function(
        func=speculative_reward,
        name="speculative_reward",
        description=DESCRIPTION,
        args_schema=ScoreRequest,
        handle_validation_error=explain,
    )
