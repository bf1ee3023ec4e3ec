"""The throughput benchmark's parts: inputs from the Blocksworld domain, timing helpers, SRM and generator runs.

``python -m evals.throughput`` runs them all and prints the figures; nothing here asserts anything.
"""
