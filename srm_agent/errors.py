"""Errors that name what is wrong, so a CLI or tool can report them in one line."""

from __future__ import annotations


class SRMAgentError(Exception):
    """Base class of the library's own errors."""


class InputError(SRMAgentError, ValueError):
    """A request field is invalid; ``field`` is its dotted path (``candidates[2].logprob``)."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


class CheckpointError(SRMAgentError, OSError):
    """A path or model id cannot be loaded as the model that was asked for."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.message = message
        super().__init__(f"{path}: {message}")


class BackendError(SRMAgentError):
    """A model backend failed (a server error or timeout, out of memory, a context window too small).

    A search ends with ``result["failure"]`` on one of these; a bug raises as itself.
    """


class PromptTooLong(InputError, BackendError):
    """A prompt plus what is to come does not fit the model's context window."""


def backend_failures() -> tuple[type[BaseException], ...]:
    """The exception types that mean "the backend failed", not "our code or a domain has a bug"."""
    failures: list[type[BaseException]] = [BackendError, TimeoutError, ConnectionError, MemoryError]
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "OutOfMemoryError"):
        failures.append(torch.OutOfMemoryError)
    return tuple(failures)


def one_line(exc: BaseException) -> str:
    """The first line of an error's message (some third-party messages run to paragraphs)."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[0] if lines else type(exc).__name__


class ServerError(BackendError, ConnectionError):
    """A model server cannot be used as asked: unreachable, failing, or lacking a capability we need."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")
