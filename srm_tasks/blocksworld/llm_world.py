"""RAP's LLM world model for Blocksworld (``--world-model llm``): the generator predicts each state.

For an action, the pool's ``world_update_*`` prompt of its operator is filled with the believed state
and the action, as llm-reasoners' ``BlocksWorldModel.update_blocks`` fills it; one greedy generation
writes the ``[CHANGE]`` sentence, which is read into the facts it removes and adds (``changes``). Its
tokens are the world model's cost. A change that cannot be read, or one that leaves an impossible
arrangement, is an invalid step (RAP's run fails there; here only that branch does). The search then
believes the prediction, so a plan found this way is graded by replaying it through the simulator.
"""

from __future__ import annotations

from typing import Any

from srm_agent.generators.base import Generator
from srm_agent.search.world import InvalidStep, WorldStep
from srm_tasks.blocksworld.changes import apply_change
from srm_tasks.blocksworld.english import COLOURS, action_text, apply_text, believed_state_text, facts_text
from srm_tasks.blocksworld.problems import fact_strings
from srm_tasks.blocksworld.prompts import (WORLD_UPDATE_KEYS, PromptPool, default_pool, load_prompt_pool,
                                           world_update_prompt)
from srm_tasks.blocksworld.world import Fact, Op, State, check_state, objects_of, parse_atom

MAX_CHANGE_TOKENS = 96  # a true change is at most 49 SmolLM2 tokens (an unstack); room for a longer wrong one
STOPS = ("\n", "[STATE")  # RAP stops at the end of the line; a model that runs on into the next state stops too


def _renamed(facts: frozenset[Fact], names: dict[str, str]) -> frozenset[Fact]:
    unknown = sorted({arg for fact in facts for arg in fact[1:] if arg not in names})
    if unknown:
        raise ValueError(f"no {', '.join(unknown)} block in this problem")
    return frozenset((fact[0], *(names[arg] for arg in fact[1:])) for fact in facts)


def predicted_facts(facts: State, change: str) -> State:
    """The state ``change`` leaves; a ValueError when it cannot be read or is no possible arrangement of the
    same blocks."""
    blocks = objects_of(facts)
    after = _renamed(apply_change(_renamed(facts, COLOURS), change), {COLOURS[b]: b for b in blocks})
    if objects_of(after) != blocks:
        raise ValueError("the change loses a block")
    try:
        check_state(after)
    except ValueError as exc:
        raise ValueError(f"the change leaves an impossible state: {exc}") from None
    return after


class BlocksworldLLMWorld:
    """The generator as Blocksworld's world model, on RAP's world-update prompts (``pool["world_update"]``)."""

    name = "llm"
    exact = False

    def __init__(self, generator: Generator, pool: PromptPool, max_new_tokens: int = MAX_CHANGE_TOKENS) -> None:
        if generator is None:
            raise ValueError("the llm world model needs a generator")
        if set(pool["world_update"]) != set(WORLD_UPDATE_KEYS):
            raise ValueError(f"prompt pool {pool['source']} has no world_update_* templates")
        self.generator, self.pool, self.max_new_tokens = generator, pool, max_new_tokens

    def prompt(self, state: dict[str, Any], op: Op) -> str:
        """The world-update prompt: the problem's own wording at the root, RAP's post-change wording after."""
        facts = frozenset(map(parse_atom, state["facts"]))
        text = believed_state_text(facts) if state["steps"] else facts_text(facts) + "."
        return world_update_prompt(self.pool, text, op)

    def step(self, task: Any, state: dict[str, Any], action: str) -> WorldStep:
        facts = frozenset(map(parse_atom, state["facts"]))
        try:  # legal in the believed state, as RAP's actions are (enumerated from it); the successor is unused
            op, _ = apply_text(facts, action)
        except ValueError as exc:
            raise InvalidStep(str(exc)) from None
        generation = self.generator.propose(self.prompt(state, op), 1, temperature=0.0,
                                            max_new_tokens=self.max_new_tokens, stop=list(STOPS))
        change = generation[0].text.strip() if len(generation) else ""
        try:
            after = predicted_facts(facts, change)
        except ValueError as exc:
            raise InvalidStep(f"world model: {exc} (predicted change: {change!r})", generation.usage) from None
        return WorldStep({**state, "facts": fact_strings(after), "steps": [*state["steps"], action_text(op)]},
                         usage=generation.usage, aux={"change": change})


def llm_world(generator: Generator, options: Any) -> BlocksworldLLMWorld:
    """The registry's factory: the world-update prompts of ``options["prompts"]`` (a pool file, or built-in)."""
    prompts = options.get("prompts") or "built-in"
    return BlocksworldLLMWorld(generator, default_pool() if prompts == "built-in" else load_prompt_pool(prompts))
