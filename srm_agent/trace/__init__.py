"""Search traces: the JSON record of one tree search (format version 2), and an offline HTML viewer.

``schema`` defines the format as pydantic models with the tree-consistency checks, ``io`` reads
and writes trace files atomically, ``html`` renders one self-contained page. From a shell:
``python -m srm_agent.trace view TRACE.json [-o page.html]``.
"""

from __future__ import annotations

from srm_agent.trace.html import GREEN, RED, render_html
from srm_agent.trace.io import load_trace, trace_json, write_trace
from srm_agent.trace.schema import VERSION, Trace, TraceDecision, TraceNode, parse_trace, validate_trace

__all__ = ["GREEN", "RED", "VERSION", "Trace", "TraceDecision", "TraceNode", "load_trace", "parse_trace",
           "render_html", "trace_json", "validate_trace", "write_trace"]
