"""Timing helpers and the machine's context: what the figures of a run depend on, and its matmul peak."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device) -> tuple[float, Any]:
    """Seconds ``fn()`` took (the device synchronised before and after), and its result."""
    _sync(device)
    start = time.perf_counter()
    result = fn()
    _sync(device)
    return time.perf_counter() - start, result


def spread(times: list[float]) -> float:
    """(max - min) / median: how much the repeats disagree."""
    return (max(times) - min(times)) / statistics.median(times) if len(times) > 1 else 0.0


class Progress:
    """A tqdm bar on stderr (when it is a terminal) and section printing that does not break it."""

    def __init__(self, total: int, enabled: bool) -> None:
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="step", file=sys.stderr, leave=False, dynamic_ncols=True, disable=None)

    def phase(self, name: str) -> None:
        if self.bar is not None:
            self.bar.set_description(name)

    def step(self) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def print(self, text: str = "") -> None:
        if self.bar is not None:
            self.bar.clear()
        print(text, flush=True)
        if self.bar is not None:
            self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], indent: str = "  ") -> str:
    """Right-aligned plain-text columns."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]

    def line(cells: Sequence[str]) -> str:
        return indent + "  ".join(c.rjust(w) for c, w in zip(cells, widths))
    return "\n".join([line(headers), indent + "  ".join("-" * w for w in widths), *map(line, rows)])


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages (other processes on a shared machine skew the timings)."""
    try:
        return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]
    except (OSError, ValueError):
        return None


def machine_context(device: torch.device, dtype: torch.dtype) -> dict[str, Any]:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import transformers

    return {
        "cpu_model": cpu,
        "cpus_available": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "torch": torch.__version__,
        "transformers": transformers.__version__,
        "python": platform.python_version(),
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "device": str(device),
        "gpu": torch.cuda.get_device_name(device) if device.type == "cuda" else None,
        "dtype": str(dtype).removeprefix("torch."),
        "load_average": load_average(),
    }


def print_machine(ctx: dict[str, Any], out: Callable[[str], None]) -> None:
    out("Machine")
    out(f"  CPU          {ctx['cpu_model']} ({ctx['cpus_available']} logical CPUs available)")
    out(f"  torch        {ctx['torch']}, {ctx['torch_threads']} intra-op / {ctx['torch_interop_threads']} "
        f"inter-op threads; transformers {ctx['transformers']}; Python {ctx['python']}")
    out(f"  device       {ctx['device']}" + (f" ({ctx['gpu']})" if ctx["gpu"] else "") + f", SRM dtype {ctx['dtype']}")
    if ctx["load_average"] is not None:
        out(f"  load average {' '.join(f'{x:.2f}' for x in ctx['load_average'])} (1/5/15 min) before the run")
    out("")


def matmul_peak(sizes: Sequence[int], dtype: torch.dtype, device: torch.device, repeats: int,
                progress: Progress) -> dict[str, Any]:
    """Median FLOP/s of square matmuls per size; the peak is the best size's median."""
    per_size = {}
    for n in sizes:
        a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
        out = torch.empty(n, n, device=device, dtype=dtype)
        timed(lambda: torch.mm(a, b, out=out), device)  # warm-up (library and kernel set-up)
        one, _ = timed(lambda: torch.mm(a, b, out=out), device)  # a guess of the cost
        inner = max(1, min(10_000, math.ceil(0.05 / max(one, 1e-6))))  # each sample lasts >= ~50 ms
        progress.step()

        def block() -> None:
            for _ in range(inner):
                torch.mm(a, b, out=out)

        times = []
        for _ in range(repeats):
            seconds, _ = timed(block, device)
            times.append(seconds / inner)
            progress.step()
        per_size[n] = {"gflops": 2 * n**3 / statistics.median(times) / 1e9, "best_gflops": 2 * n**3 / min(times) / 1e9,
                       "spread": spread(times)}
    best = max(per_size, key=lambda n: per_size[n]["gflops"])
    return {"dtype": str(dtype).removeprefix("torch."), "repeats": repeats, "sizes": per_size,
            "peak_gflops": per_size[best]["gflops"], "peak_size": best}


def print_matmul(mm: dict[str, Any], repeats: int, out: Callable[[str], None]) -> None:
    before, after = mm["before"], mm["after"]
    out(f"Matmul peak ({mm['dtype']}, median of {repeats}; measured before and after the SRM runs)")
    out(table(["size", "before GFLOP/s", "best", "spread", "after GFLOP/s", "best", "spread"],
              [[f"{n}x{n}", *(x for run in (before, after) for x in (
                  f"{run['sizes'][n]['gflops']:.1f}", f"{run['sizes'][n]['best_gflops']:.1f}",
                  f"{100 * run['sizes'][n]['spread']:.0f}%"))] for n in before["sizes"]]))
    out(f"  peak: {mm['peak_gflops']:.1f} GFLOP/s (the highest median)")
    out("")
