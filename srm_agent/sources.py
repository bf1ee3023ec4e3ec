"""Where a model comes from: a local folder (checked before transformers sees it) or a hub id.

Offline first: a hub id is looked up in the local Hugging Face cache, and when it is not there and the
hub cannot be reached (``HF_HUB_OFFLINE``, or a connection attempt that fails within a second and a
half) loading fails at once with one line, instead of transformers' half a minute of retries.
"""

from __future__ import annotations

import os
import socket
import threading
from pathlib import Path
from urllib.parse import urlsplit

from srm_agent.errors import CheckpointError, one_line

HUB_PROBE_SECONDS = 1.5
_TRUE = {"1", "on", "yes", "true"}


def looks_like_path(name: str) -> bool:
    """True for names only a file path can be (``./x``, ``/x``, ``a/b/c``, ``x.json``), never a hub id."""
    return name.startswith(("/", ".", "~")) or name.count("/") > 1 or Path(name).suffix != ""


def check_checkpoint_dir(path: Path, what: str = "SRM checkpoint", *, gguf_file: str | None = None) -> None:
    """Fail with a message naming the path unless it is a safetensors (or, with ``gguf_file``, GGUF) model folder."""
    if not path.is_dir():
        raise CheckpointError(str(path), f"not a directory; a {what} is a folder with config.json and *.safetensors")
    if gguf_file is not None:
        if not (path / gguf_file).is_file():
            raise CheckpointError(str(path), f"no GGUF file {gguf_file} in this folder")
        return
    if not (path / "config.json").is_file():
        raise CheckpointError(str(path), f"no config.json: not a {what}")
    if not any(path.glob("*.safetensors")):
        if any(path.glob("*.bin")) or any(path.glob("*.pt")):
            raise CheckpointError(str(path), "weights are pickle files (*.bin/*.pt); srm-agent loads safetensors only")
        raise CheckpointError(str(path), f"no *.safetensors weights: not a {what}")


def hub_unreachable(timeout: float = HUB_PROBE_SECONDS) -> str | None:
    """Why the Hugging Face hub cannot be used now, or None when it answers.

    The probe is one TCP connection in a daemon thread, so a hanging DNS lookup costs ``timeout`` at most.
    """
    import huggingface_hub

    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        if os.environ.get(variable, "").strip().lower() in _TRUE:
            return f"{variable} is set"
    if huggingface_hub.is_offline_mode():
        return "HF_HUB_OFFLINE is set"
    endpoint = urlsplit(os.environ.get("HF_ENDPOINT") or huggingface_hub.constants.ENDPOINT)
    host = endpoint.hostname or "huggingface.co"
    port = endpoint.port or (80 if endpoint.scheme == "http" else 443)
    done, answered = threading.Event(), []

    def probe() -> None:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
            answered.append(True)
        except OSError:
            pass
        finally:
            done.set()

    threading.Thread(target=probe, name="hub-probe", daemon=True).start()
    done.wait(timeout)
    return None if answered else f"the model hub ({host}) does not answer"


def model_source(name: str, what: str, *, gguf_file: str | None = None) -> tuple[str, bool]:
    """``(what to pass to from_pretrained, local_files_only)`` for a local folder or a hub id.

    A checked local folder, a hub id already in the Hugging Face cache (loaded offline), or a hub id to
    download; a name that can only be a path, or a hub id while the hub is unreachable, is a
    ``CheckpointError`` that says what to pass instead.
    """
    path = Path(name).expanduser()
    if path.exists():
        check_checkpoint_dir(path, what, gguf_file=gguf_file)
        return str(path), True
    if looks_like_path(name):
        raise CheckpointError(name, f"no such file or directory; pass the path of a local {what} folder")
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(name, gguf_file or "config.json")
    except ValueError:  # huggingface_hub's HFValidationError: not a repo id either
        raise CheckpointError(name, f"no such folder, and not a hub id; pass the path of a local {what} folder"
                              ) from None
    if isinstance(cached, str):
        return name, True
    reason = hub_unreachable()
    if reason:
        raise CheckpointError(name, f"no such folder, and as a hub id it is not in the local cache while {reason}; "
                                    f"pass the path of a local {what} folder")
    return name, False


def describe_load_error(exc: BaseException) -> str:
    """transformers' load errors in one line: the first line of the message, or what remote code needs."""
    text = str(exc)
    if "trust_remote_code" in text:
        return ("its config.json asks to run the checkpoint's own Python code (auto_map); allow that with "
                "trust_remote_code=True (--trust-remote-code) only for a checkpoint you trust")
    return one_line(exc)
