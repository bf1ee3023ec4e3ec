"""`langgraph dev` serves the Studio graph of langgraph.json offline: graph shape and one real search."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
LANGGRAPH = Path(sys.executable).with_name("langgraph")
START_TIMEOUT_S = 180
RUN_TIMEOUT_S = 300
ENV = {
    "LANGGRAPH_CLI_NO_ANALYTICS": "1",  # the CLI posts usage analytics otherwise
    "LANGGRAPH_NO_VERSION_CHECK": "true",  # langgraph-api asks PyPI for newer versions otherwise
    "LANGSMITH_TRACING": "false",  # no run traces to LangSmith, even with an API key in the environment
    "PYTHONUNBUFFERED": "1",  # the log file is up to date while we read it
    "SRM_MAX_DEPTH": "3",
    "SRM_K": "3",
}
# A shared Redis cache, a licence/control-plane key (metadata beacon) or another task would change what runs.
UNSET = ["REDIS_URL", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "LANGGRAPH_CLOUD_LICENSE_KEY",
         "LANGSMITH_CONTROL_PLANE_API_KEY", "SRM_TASK", "SRM_STRATEGY", "SRM_EVALUATOR", "SRM_PATH"]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_text(log: Path) -> str:
    return ANSI.sub("", log.read_text(errors="replace")) if log.exists() else ""


def _tail(log: Path, lines: int = 60) -> str:
    return "\n".join(_log_text(log).splitlines()[-lines:])


def _call(url: str, body: dict | None = None, timeout: float = 10) -> Any:
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"},
                                 method="GET" if body is None else "POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return json.loads(resp.read())
    except urllib.error.HTTPError as e:
        raise AssertionError(f"{req.method} {url} -> {e.code}: {e.read()[:2000]!r}") from None


def _wait_until_up(proc: subprocess.Popen, log: Path, port: int) -> str:
    """The server's base URL once /ok answers; the port is read from the log (dev moves it if taken)."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"langgraph dev exited with {proc.returncode}"
        moved = re.search(r"API: http://127\.0\.0\.1:(\d+)", _log_text(log))
        url = f"http://127.0.0.1:{moved.group(1) if moved else port}"
        with contextlib.suppress(OSError, AssertionError, ValueError):
            if _call(f"{url}/ok", timeout=2).get("ok"):
                return url
        time.sleep(1)
    raise AssertionError(f"langgraph dev did not answer /ok within {START_TIMEOUT_S} s")


@contextlib.contextmanager
def _langgraph_dev(log: Path):
    """Run `langgraph dev` from the repo root, bound to loopback, logging outside the repo; always stop it."""
    assert LANGGRAPH.exists(), f"{LANGGRAPH} is missing: install the project with the `studio` extra"
    env = {k: v for k, v in os.environ.items() if k not in UNSET} | ENV
    port = _free_port()
    cmd = [str(LANGGRAPH), "dev", "--no-browser", "--no-reload", "--host", "127.0.0.1", "--port", str(port)]
    with log.open("wb") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        yield _wait_until_up(proc, log, port)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


@pytest.mark.slow
def test_langgraph_dev_serves_and_runs_the_tree_search_graph(tmp_path):
    log = tmp_path / "langgraph-dev.log"
    try:
        with _langgraph_dev(log) as url:
            assistants = _call(f"{url}/assistants/search", {"graph_id": "tree_search"})
            assert assistants, "no assistant for graph_id tree_search"
            assistant_id = assistants[0]["assistant_id"]

            nodes = {n["id"] for n in _call(f"{url}/assistants/{assistant_id}/graph")["nodes"]}
            assert {"propose", "srm", "expand"} <= nodes, nodes

            state = _call(f"{url}/runs/wait", {"assistant_id": assistant_id,
                                               "input": {"problem": {"start": 1, "target": 7}}},
                          timeout=RUN_TIMEOUT_S)
            result = state.get("result")
            assert result, f"no result in the final state: {str(state)[:2000]}"
            assert isinstance(result["solved"], bool) and isinstance(result["path"], list), result
            assert result["usage"]["generator_calls"] > 0, result["usage"]
    except (AssertionError, OSError) as e:
        pytest.fail(f"{e}\n--- langgraph dev log (last lines) ---\n{_tail(log)}", pytrace=False)
