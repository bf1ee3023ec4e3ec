"""Reading and writing trace files: validated on the way out, so a bad trace fails where it is made."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from srm_agent.errors import InputError
from srm_agent.fsio import atomic_write_text
from srm_agent.trace.schema import parse_trace, validate_trace


def _to_builtin(obj: Any) -> Any:
    """JSON fallback for numpy scalars and arrays, which search code often leaves in decisions."""
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if hasattr(obj, "item"):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not JSON serialisable")


def trace_json(trace: Mapping[str, Any] | BaseModel) -> str:
    """The validated trace as the text of a trace file (UTF-8 JSON, one key per line)."""
    if isinstance(trace, BaseModel):
        trace = trace.model_dump()
    try:
        plain = json.loads(json.dumps(trace, default=_to_builtin))
    except (TypeError, ValueError, RecursionError) as exc:
        raise InputError("trace", f"is not JSON serialisable: {exc}") from None
    return json.dumps(validate_trace(plain), ensure_ascii=False, allow_nan=False, indent=1) + "\n"


def write_trace(trace: Mapping[str, Any] | BaseModel, path: str | os.PathLike[str]) -> Path:
    """Validate ``trace`` and write it to ``path`` atomically (mode 0644); return the path."""
    return atomic_write_text(path, trace_json(trace))


def load_trace(path: str | os.PathLike[str], *, registered_names: bool = True) -> dict[str, Any]:
    """Read and validate a trace file (version 1 or 2, returned as 2); a missing file or bad JSON is an
    ``InputError`` too. ``registered_names=False`` accepts a plug-in's name this process never registered."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(str(p), "no such file") from None
    except IsADirectoryError:
        raise InputError(str(p), "is a directory, not a trace file") from None
    except UnicodeDecodeError as exc:
        raise InputError(str(p), f"is not UTF-8 text: {exc}") from None
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as exc:  # also too deep nesting, or integers of too many digits
        raise InputError(str(p), f"is not valid JSON: {exc}") from None
    return parse_trace(data, registered_names=registered_names).model_dump()
