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


class ServerError(SRMAgentError, ConnectionError):
    """A model server cannot be used as asked: unreachable, failing, or lacking a capability we need."""

    def __init__(self, url: str, message: str) -> None:
        self.url = url
        self.message = message
        super().__init__(f"{url}: {message}")
