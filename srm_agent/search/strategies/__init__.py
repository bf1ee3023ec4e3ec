"""Search strategies: breadth-first, depth-first, beam (ToT-BFS) and MCTS (RAP), one module each."""

from srm_agent.search.strategies.base import SearchContext, Strategy

__all__ = ["SearchContext", "Strategy"]
