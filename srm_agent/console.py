"""What every command line of the project shares: one --help layout, one-line errors instead of tracebacks,
quiet loads."""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import PurePath
from typing import Any, TextIO

from srm_agent.errors import CheckpointError, SRMAgentError, one_line


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """The --help layout of every command: descriptions (module docstrings) keep their line breaks and lose
    their reST ``literal`` quotes; an option's default is added only where its help does not already give
    one, and shown as a user types it (``3-4`` for a range, ``a,b`` for a list), never as a Python repr."""

    def _format_text(self, text: str) -> str:
        return super()._format_text(_LITERAL.sub(r"\1", text))

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        default = action.default
        if ("default" in text.lower() or default is None or default is False or default == [] or default == ""
                or default is argparse.SUPPRESS
                or (not action.option_strings and action.nargs not in (argparse.OPTIONAL, argparse.ZERO_OR_MORE))):
            return action.help
        shown = show_value(default).replace("%", "%%")  # argparse %-formats help strings
        return f"{text} (default: {shown})" if text else f"(default: {shown})"


_LITERAL = re.compile(r"``(.+?)``", re.S)


def show_value(value: Any) -> str:
    """A default as it would be typed on the command line: ``(3, 4)`` is ``3-4``, ``[1, 4]`` is ``1,4``."""
    if isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return str(value[0]) if value[0] == value[1] else f"{value[0]}-{value[1]}"
    if isinstance(value, (list, tuple)):
        return ",".join(show_value(v) for v in value)
    if isinstance(value, PurePath):
        return str(value)
    if value is True:
        return "on"
    return str(value)


@contextlib.contextmanager
def long_step(description: str, *, every: float = 10.0, stream: TextIO | None = None) -> Iterator[None]:
    """A step that shows no progress of its own (parsing a GGUF file, writing weights): its description now and
    a line every ``every`` seconds while it runs, so neither a terminal nor a CI log sits silent for long."""
    out = stream or sys.stderr
    print(f"{description} …", file=out, flush=True)
    start, done = time.monotonic(), threading.Event()

    def beat() -> None:
        while not done.wait(every):
            print(f"  … {time.monotonic() - start:.0f} s", file=out, flush=True)

    thread = threading.Thread(target=beat, name="long-step", daemon=True)
    thread.start()
    try:
        yield
    finally:
        done.set()
        thread.join()


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
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 2
    except (SRMAgentError, OSError) as exc:
        if debug:
            raise
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        return 1
    except Exception as exc:
        if debug:
            raise
        print(f"error: {type(exc).__name__}: {_one_line(exc)} (rerun with --debug for the traceback)",
              file=sys.stderr)
        return 1
    return 0


def _one_line(exc: BaseException) -> str:
    """An error's message on one line: a third-party message of several lines keeps its first."""
    first = one_line(exc)
    return first if first == str(exc).strip() else f"{first} (more with --debug)"


@contextlib.contextmanager
def option_hint(option: str, default: str) -> Iterator[None]:
    """Loading what ``option`` names: a ``CheckpointError`` also says that leaving the option out uses ``default``."""
    try:
        yield
    except CheckpointError as exc:
        raise CheckpointError(exc.path, f"{exc.message}; or omit {option} to use {default}") from exc


def named_path(text: str) -> tuple[str, str]:
    """``NAME=PATH`` as an argparse type (a table row's name and the model it shows); the name is stripped."""
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name.strip(), path


def positive_int(text: str) -> int:
    """An argparse type: a whole number >= 1, with a message that says so."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value
