"""The installed environment: torch is the CPU build the Makefile pins, with no CUDA wheels beside it."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def makefile_torch_pin() -> str:
    match = re.search(r"^TORCH := torch==(\S+)$", (ROOT / "Makefile").read_text(), re.M)
    assert match, "the Makefile pins torch in one variable, TORCH := torch==VERSION"
    return match.group(1)


def test_torch_is_the_pinned_cpu_build():
    public, _, local = torch.__version__.partition("+")
    assert public == makefile_torch_pin()
    assert torch.version.cuda is None and getattr(torch.version, "hip", None) is None, torch.__version__
    assert local in ("cpu", ""), f"torch {torch.__version__} is not the CPU build"  # "" on macOS, where CPU is all


def test_no_cuda_wheels_are_installed():
    names = sorted({dist.metadata["Name"] for dist in metadata.distributions()})
    cuda = [n for n in names if n.lower().startswith(("nvidia-", "cuda-", "triton"))]
    assert not cuda, f"CUDA packages in this environment: {', '.join(cuda)}"


def test_makefile_takes_torch_from_the_cpu_index_unless_a_local_wheel_exists():
    text = (ROOT / "Makefile").read_text()
    assert "TORCH_INDEX ?= https://download.pytorch.org/whl/cpu" in text
    assert "--index-url $(TORCH_INDEX)" in text  # the only index of that call: PyPI's CUDA build is never seen
    assert "--no-index" in text  # the local wheel is tried without any network
    assert "--quiet $(TORCH)" not in text and "install --quiet" not in text  # long installs show their progress
