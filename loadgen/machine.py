"""Facts about the machine a measurement ran on (for every report)."""
from __future__ import annotations

import platform
import sys
from functools import lru_cache

from server.cpus import available_cpus


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


def machine_info() -> dict:
    import os

    info = {
        "cpu_model": cpu_model(),
        "cpus_available": available_cpus(),
        "cpus_host": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:  # pragma: no cover
        pass
    return info
