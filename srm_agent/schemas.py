"""The JSON request of the tool and the CLI (DESIGN §3), validated field by field."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from srm_agent.rule import Candidate

# Bounds that keep one request from exhausting memory; the SRM itself keeps only its window.
MAX_STATE_CHARS = 200_000
MAX_ACTION_CHARS = 20_000
MAX_CANDIDATES = 256

FiniteFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]


def _non_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class CandidateIn(BaseModel):
    """A candidate action with its generator log-probability and token count."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(min_length=1, max_length=MAX_ACTION_CHARS, description="the action text")
    logprob: FiniteFloat = Field(le=0.0, description="summed token log-probability under the generator")
    num_tokens: int = Field(strict=True, ge=1, description="number of tokens in the action")

    _text_not_blank = field_validator("text")(_non_blank)

    def to_candidate(self) -> Candidate:
        return Candidate(text=self.text, logprob=self.logprob, num_tokens=self.num_tokens)


class ScoreRequest(BaseModel):
    """One expansion to verify: the state and its K candidates, with optional rule parameters."""

    model_config = ConfigDict(extra="forbid")

    state: str = Field(min_length=1, max_length=MAX_STATE_CHARS, description="the task and the steps so far")
    candidates: list[CandidateIn] = Field(min_length=1, max_length=MAX_CANDIDATES)
    alpha: FiniteFloat | None = Field(default=None, ge=0.0, le=1.0, description="weight of SR against RC")
    tau: FiniteFloat | None = Field(default=None, gt=0.0, description="SRM softmax temperature")
    mode: Literal["stochastic", "threshold"] | None = None
    threshold: FiniteFloat | None = Field(default=None, ge=0.0, description="SR needed in threshold mode")
    ratio: Literal["srm_over_llm", "llm_over_srm"] | None = None
    seed: int | None = Field(default=None, strict=True, description="seed of the stochastic acceptance")

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
    temperature: FiniteFloat = Field(default=0.8, ge=0.0)
    max_new_tokens: int = Field(default=48, strict=True, ge=1, le=4096)
    stop: list[str] = Field(default_factory=lambda: ["\n"])
    seed: int | None = Field(default=None, strict=True)
