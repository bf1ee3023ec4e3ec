"""The graph `langgraph dev` serves (see langgraph.json): importing this module loads the embedded models.

It lives apart from ``graphs.tree_search`` so that importing the search code loads no model.
"""

from graphs.tree_search import studio_graph

graph = studio_graph()
