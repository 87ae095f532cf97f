"""The one description of the machine a measurement ran on (every document carries it as `machine`)."""

from __future__ import annotations

import os
import platform
import sys
from functools import lru_cache
from importlib import metadata
from typing import Any


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def machine_info() -> dict[str, Any]:
    """cpu_model, cpus (usable by this process), cpus_host, python, platform, and the versions of the measuring
    and serving packages (read from their metadata: nothing is imported)."""
    return {
        "cpu_model": cpu_model(),
        "cpus": usable_cpus(),
        "cpus_host": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "locust": _version("locust"),
        **_onnxruntime(),
    }


ORT_DISTRIBUTIONS = ("onnxruntime", "onnxruntime-openvino", "onnxruntime-gpu")


def _onnxruntime() -> dict[str, Any]:
    """The ONNX Runtime distribution installed (its variants all provide the `onnxruntime` module; one per
    environment) and its version: `onnxruntime_distribution` says which (docs/providers.md)."""
    for dist in ORT_DISTRIBUTIONS:
        v = _version(dist)
        if v is not None:
            return {"onnxruntime": v, "onnxruntime_distribution": dist}
    return {"onnxruntime": None, "onnxruntime_distribution": None}


def machine_cpus(machine: dict[str, Any] | None) -> int | None:
    """The CPU count of a document's `machine` (schema-1 bench documents called it `cpus_available`)."""
    if not machine:
        return None
    n = machine.get("cpus", machine.get("cpus_available"))
    return int(n) if n is not None else None
