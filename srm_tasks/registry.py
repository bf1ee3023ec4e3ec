"""The domain registry: one ``TaskSpec`` per domain, so evaluations and the trainer find a domain by name.

A new domain is one package implementing ``srm_agent.search.task.Task`` plus one ``register(TaskSpec(...))``
call: ``python -m evals.run --bench NAME`` and the trainer's ``--bench NAME`` then take it, with the
command-line options the spec declares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from srm_agent.search.task import Task

Options = Mapping[str, Any]


@dataclass(frozen=True)
class Option:
    """A command-line option a domain takes (``--name``); its value reaches the spec's functions by ``dest``."""

    name: str
    help: str
    default: Any = None
    type: Callable[[str], Any] = str
    metavar: str | None = None

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


@dataclass(frozen=True)
class TaskSpec:
    """How to build a domain's task and problems from options, and how to tell its problems apart.

    ``load_problems`` gets the options plus ``data`` (a path or None) and ``seed``; ``problem_key`` is
    equal for two problems that are the same problem (training and evaluation sets are kept apart
    by it); ``depth`` is the search depth for one problem (its optimal length, where known).
    """

    name: str
    summary: str
    make_task: Callable[[Options], Task]
    load_problems: Callable[[Options], list[Any]]
    problem_key: Callable[[Any], str]
    default_depth: int
    data_help: str = "problems to run"
    options: tuple[Option, ...] = field(default_factory=tuple)
    problem_depth: Callable[[Any], int | None] = lambda problem: None
    world_models: Mapping[str, Callable[[Any, Options], Any]] = field(default_factory=dict)
    """Predicting world models by name (besides the task's exact dynamics): ``factory(generator, options)``."""
    configure_method: Callable[[str | None, dict[str, Any], Options], dict[str, Any]] = \
        lambda family, kwargs, options: kwargs
    """How the domain runs an evaluation method of search ``family`` (None: chain of thought): the method's
    ``build_tree_search`` keyword arguments, adjusted where the domain's baselines search their own way (GSM8K's
    RAP). The result may add ``task`` (a task for this method) and ``world`` (``factory(generator)``)."""

    def depth(self, problem: Any, override: int | None = None) -> int:
        """``override``, else the problem's own depth, else the domain's default."""
        return override or self.problem_depth(problem) or self.default_depth

    def defaults(self) -> dict[str, Any]:
        """Every domain option at its default (for building a task without a command line)."""
        return {option.dest: option.default for option in self.options}


_SPECS: dict[str, TaskSpec] = {}


def register(spec: TaskSpec) -> TaskSpec:
    """Add a domain; registering a second spec under a taken name is a bug, so it raises."""
    if spec.name in _SPECS and _SPECS[spec.name] is not spec:
        raise ValueError(f"a domain named {spec.name!r} is already registered")
    _SPECS[spec.name] = spec
    return spec


def get_spec(name: str) -> TaskSpec:
    _load_builtins()
    if name not in _SPECS:
        raise KeyError(f"unknown domain {name!r}; registered: {', '.join(sorted(_SPECS))}")
    return _SPECS[name]


def domain_names() -> list[str]:
    _load_builtins()
    return sorted(_SPECS)


def add_domain_arguments(parser: Any, **defaults: Any) -> None:
    """Every registered domain's options on an argparse parser, a group per domain; ``defaults`` overrides some
    (by ``dest``). An option two domains share is added once, with each domain's help."""
    shared: dict[str, list[str]] = {}
    metavars: dict[str, list[str]] = {}
    for name in domain_names():
        for option in get_spec(name).options:
            shared.setdefault(option.name, []).append(f"{name}: {option.help}")
            if option.metavar and option.metavar not in metavars.setdefault(option.name, []):
                metavars[option.name].append(option.metavar)
    seen: set[str] = set()
    for name in domain_names():
        group = parser.add_argument_group(f"{name} options")
        for option in get_spec(name).options:
            if option.name in seen:
                continue
            seen.add(option.name)
            helps = shared[option.name]
            group.add_argument(f"--{option.name}", type=option.type, default=defaults.get(option.dest, option.default),
                               metavar="|".join(metavars.get(option.name, [])) or None,
                               help=option.help if len(helps) == 1 else "; ".join(helps))


def domain_options(args: Any, spec: TaskSpec) -> dict[str, Any]:
    """The values of ``spec``'s own options from parsed arguments."""
    return {option.dest: getattr(args, option.dest) for option in spec.options}


def _load_builtins() -> None:
    """The built-in domains register themselves on import; importing them here keeps that lazy."""
    import srm_tasks.blocksworld.spec  # noqa: F401
    import srm_tasks.gsm8k.spec  # noqa: F401
    import srm_tasks.toy  # noqa: F401  (registers reach_number)
