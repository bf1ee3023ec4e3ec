"""What every command line of the project shares: one-line errors instead of tracebacks, quiet loads."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import Any

from srm_agent.errors import SRMAgentError


def quiet_transformers() -> None:
    """Silence transformers' load reports and per-file progress bars (our own bars stay)."""
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()


def run_command(action: Callable[[], Any], *, debug: bool, usage_errors: tuple[type[BaseException], ...] = (),
                on_interrupt: str = "") -> int:
    """Run a command; bad input (``usage_errors``) is one ``error: …`` line and exit 2, other failures exit 1.

    With ``debug`` the traceback of an unexpected error is shown instead.
    """
    try:
        action()
    except KeyboardInterrupt:
        print(f"\nerror: interrupted{'; ' + on_interrupt if on_interrupt else ''}", file=sys.stderr)
        return 130
    except usage_errors as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (SRMAgentError, OSError) as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", file=sys.stderr)
        return 1
    return 0


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
