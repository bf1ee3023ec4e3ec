"""Tree search over a Task: strategies, evaluators, proposers and world models as plug-ins, a delta-grown tree.

``build_tree_search`` compiles the LangGraph graph; ``run_search`` runs the same steps in a plain loop.
"""

from srm_agent.search.engine import Engine, SearchConfig, run_search
from srm_agent.search.evaluators.base import EvalContext, Evaluation, Evaluator
from srm_agent.search.graph import build_tree_search
from srm_agent.search.proposers import Proposal, Proposer
from srm_agent.search.registry import (evaluator_names, register_evaluator, register_strategy, strategy_names)
from srm_agent.search.strategies.base import SearchContext, Strategy
from srm_agent.search.task import Task
from srm_agent.search.traces import FolderSink, TraceSink
from srm_agent.search.tree import Tree
from srm_agent.search.world import ExactWorld, InvalidStep, WorldModel, WorldStep

__all__ = ["Engine", "EvalContext", "Evaluation", "Evaluator", "ExactWorld", "FolderSink", "InvalidStep", "Proposal",
           "Proposer", "SearchConfig", "SearchContext", "Strategy", "Task", "TraceSink", "Tree", "WorldModel",
           "WorldStep", "build_tree_search", "evaluator_names", "register_evaluator", "register_strategy",
           "run_search", "strategy_names"]
