"""The JSON request of the tool and the CLI (DESIGN §3), validated field by field.

Every field is bounded so that a request that validates also computes: no field can make numpy or
torch raise, overflow a float or put NaN in the verdict (tests/test_interfaces.py checks the corners).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from srm_agent.rule import MAX_SEED, Candidate

# Bounds that keep one request from exhausting memory; the SRM itself keeps only its window.
MAX_STATE_CHARS = 200_000
MAX_ACTION_CHARS = 20_000
MAX_CANDIDATES = 256
# More tokens than a MAX_ACTION_CHARS action can have (4 UTF-8 bytes a character, one byte-level token a
# byte, plus end-of-text); it also keeps logprob / num_tokens a float (10**400 is not one).
MAX_NUM_TOKENS = 100_000
MAX_STOPS = 16
MAX_STOP_CHARS = 256
# A positive sampling temperature below this divides float32 logits towards overflow (and samples
# greedily in all but name); 0 asks for greedy decoding.
MIN_TEMPERATURE = 1e-3

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
Seed = Annotated[int, Field(strict=True, ge=0, le=MAX_SEED)]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CandidateIn(BaseModel):
    """A candidate action with its generator log-probability and token count."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_ACTION_CHARS, description="the action text")
    logprob: FiniteFloat = Field(le=0.0, description="summed token log-probability under the generator")
    num_tokens: int = Field(strict=True, ge=1, le=MAX_NUM_TOKENS, description="number of tokens in the action")

    _text_not_blank = field_validator("text")(_non_blank)

    def to_candidate(self) -> Candidate:
        return Candidate(text=self.text, logprob=self.logprob, num_tokens=self.num_tokens)


class ScoreRequest(BaseModel):
    """One expansion to verify: the state and its K candidates, with optional rule parameters."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(min_length=1, max_length=MAX_STATE_CHARS, description="the task and the steps so far")
    candidates: list[CandidateIn] = Field(min_length=1, max_length=MAX_CANDIDATES)
    alpha: FiniteFloat | None = Field(default=None, ge=0.0, le=1.0, description="weight of SR against RC")
    tau: FiniteFloat | None = Field(default=None, gt=0.0, description="SRM softmax temperature (any finite value > 0)")
    mode: Literal["stochastic", "threshold"] | None = None
    threshold: FiniteFloat | None = Field(default=None, ge=0.0, description="SR needed in threshold mode")
    ratio: Literal["srm_over_llm", "llm_over_srm"] | None = None
    seed: Seed | None = Field(default=None, description="seed of the stochastic acceptance, 0 <= seed < 2**64")

    _state_not_blank = field_validator("state")(_non_blank)

    def rule_overrides(self) -> dict[str, object]:
        """The rule parameters this request sets (the rest keep their configured defaults)."""
        names = ("alpha", "tau", "mode", "threshold", "ratio")
        return {n: getattr(self, n) for n in names if getattr(self, n) is not None}


def describe_validation_error(exc: ValidationError) -> str:
    """One line naming every bad field: ``candidates[1].logprob: Input should be ...``."""
    parts = []
    for err in exc.errors():
        path = ""
        for loc in err["loc"]:
            path += f"[{loc}]" if isinstance(loc, int) else (f".{loc}" if path else str(loc))
        parts.append(f"{path or 'request'}: {err['msg']}")
    return "; ".join(parts)


class ProposeRequest(BaseModel):
    """What to ask the generator for: K sampled continuations of a prompt."""

    model_config = ConfigDict(extra="forbid")

    prompt: str = Field(min_length=1, max_length=MAX_STATE_CHARS, description="the text the generator continues")
    state: str | None = Field(default=None, min_length=1, max_length=MAX_STATE_CHARS,
                              description="the state the SRM sees (default: the prompt)")
    k: int = Field(default=4, strict=True, ge=1, le=MAX_CANDIDATES)
    temperature: FiniteFloat = Field(default=0.8, ge=0.0, le=100.0,
                                     description=f"0 (greedy) or from {MIN_TEMPERATURE} to 100")
    max_new_tokens: int = Field(default=48, strict=True, ge=1, le=4096)
    stop: list[Annotated[str, Field(max_length=MAX_STOP_CHARS)]] = Field(default_factory=lambda: ["\n"],
                                                                        max_length=MAX_STOPS)
    seed: Seed | None = Field(default=None, description="seed of the sampling, 0 <= seed < 2**64")

    @field_validator("temperature")
    @classmethod
    def _greedy_or_tempered(cls, value: float) -> float:
        if 0.0 < value < MIN_TEMPERATURE:
            raise ValueError(f"must be 0 (greedy) or at least {MIN_TEMPERATURE}")
        return value


class TaskProposeRequest(BaseModel):
    """A problem of a registered task and the steps taken so far: ``propose --task`` scores every legal next action."""

    model_config = ConfigDict(extra="forbid")

    problem: dict[str, Any] = Field(description="the problem as the task reads it (Blocksworld: {init, goal})")
    steps: list[Annotated[str, Field(min_length=1, max_length=MAX_ACTION_CHARS)]] = Field(
        default_factory=list, max_length=MAX_CANDIDATES, description="actions already taken, in order")
