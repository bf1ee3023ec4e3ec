"""Tree search over a Task: strategies and evaluators as plug-ins, a tree that grows by deltas."""
