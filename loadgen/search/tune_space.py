"""The configuration advisor's search space: configurations (frozen, hashable, stably named) and the values of
each dimension, with instances x intra-op threads split to fit the CPUs. See loadgen.search.tune for the search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

Dimension = Literal["max_batch_size", "instances", "max_queue_delay_ms", "preferred_batch_sizes", "provider"]
DIMENSIONS: tuple[Dimension, ...] = (
    "max_batch_size",
    "instances",
    "max_queue_delay_ms",
    "preferred_batch_sizes",
    "provider",
)


@dataclass(frozen=True, order=True)
class TuneConfig:
    """One server configuration; hashable, with a stable name such as `b8-i2x1-d2` (`-p4_8` with preferred sizes,
    `-openvino` on another execution provider than cpu)."""

    max_batch_size: int
    instances: int
    intra_op_threads: int
    max_queue_delay_ms: float
    preferred_batch_sizes: tuple[int, ...] = ()
    provider: str = "cpu"

    @property
    def name(self) -> str:
        pref = "-p" + "_".join(str(p) for p in self.preferred_batch_sizes) if self.preferred_batch_sizes else ""
        prov = "" if self.provider == "cpu" else f"-{self.provider}"
        return (
            f"b{self.max_batch_size}-i{self.instances}x{self.intra_op_threads}-d{self.max_queue_delay_ms:g}{pref}{prov}"
        )

    def overrides(self) -> dict[str, Any]:
        """Model-config overrides (INFERLOAD_OVERRIDES / ServerProcess(overrides=...)) for this configuration."""
        return {
            "max_batch_size": self.max_batch_size,
            "batching": {
                "max_queue_delay_ms": float(self.max_queue_delay_ms),
                "preferred_batch_sizes": list(self.preferred_batch_sizes),
            },
            "instances": {
                "count": self.instances,
                "intra_op_threads": self.intra_op_threads,
                "provider": self.provider,
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "max_batch_size": self.max_batch_size,
            "instances": self.instances,
            "intra_op_threads": self.intra_op_threads,
            "max_queue_delay_ms": self.max_queue_delay_ms,
            "preferred_batch_sizes": list(self.preferred_batch_sizes),
            "provider": self.provider,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TuneConfig:
        return cls(
            int(d["max_batch_size"]),
            int(d["instances"]),
            int(d["intra_op_threads"]),
            float(d["max_queue_delay_ms"]),
            tuple(int(x) for x in d.get("preferred_batch_sizes") or ()),
            str(d.get("provider") or "cpu"),
        )


@dataclass(frozen=True)
class TuneSpace:
    """The values of each dimension; `cpus` the CPUs the server may use (instances x threads fits them); `providers`
    the ONNX Runtime execution providers to try (cpu, openvino, ...; server/providers.py), the first is the start."""

    batch_sizes: tuple[int, ...] = (1, 4, 8, 16, 32)
    instances: tuple[int, ...] = (1, 2)
    delays_ms: tuple[float, ...] = (0.0,)
    cpus: int = 2
    preferred: tuple[tuple[int, ...], ...] = ((),)
    providers: tuple[str, ...] = ("cpu",)

    def __post_init__(self) -> None:
        object.__setattr__(self, "batch_sizes", tuple(sorted(set(self.batch_sizes))))
        object.__setattr__(self, "instances", tuple(sorted(set(self.instances))))
        object.__setattr__(self, "delays_ms", tuple(sorted(set(float(d) for d in self.delays_ms))))
        object.__setattr__(self, "preferred", tuple(dict.fromkeys(tuple(sorted(set(p))) for p in self.preferred)))
        object.__setattr__(self, "providers", tuple(dict.fromkeys(self.providers)))
        if self.cpus < 1:
            raise ValueError("cpus must be >= 1")
        for name, vals in (
            ("max_batch_size", self.batch_sizes),
            ("instances", self.instances),
            ("max_queue_delay_ms", self.delays_ms),
            ("preferred_batch_sizes", self.preferred),
            ("provider", self.providers),
        ):
            if not vals:
                raise ValueError(f"{name}: give at least one value")
        if self.batch_sizes[0] < 1 or self.instances[0] < 1 or self.delays_ms[0] < 0:
            raise ValueError("batch sizes and instance counts must be >= 1, delays >= 0 ms")
        if self.instances[-1] > self.cpus:
            raise ValueError(
                f"instances {self.instances[-1]} > {self.cpus} CPUs: each instance needs at least one "
                "intra-op thread; drop the value or give more CPUs"
            )
        if any(x < 1 for p in self.preferred for x in p):
            raise ValueError("preferred batch sizes must be >= 1")

    def threads_for(self, instances: int) -> int:
        return max(1, self.cpus // instances)

    def config(
        self,
        max_batch_size: int,
        instances: int,
        delay_ms: float,
        preferred: tuple[int, ...] = (),
        provider: str | None = None,
    ) -> TuneConfig:
        pref = tuple(p for p in preferred if p <= max_batch_size)
        prov = provider if provider is not None else self.providers[0]
        return TuneConfig(max_batch_size, instances, self.threads_for(instances), float(delay_ms), pref, prov)

    def start(self) -> TuneConfig:
        b = self.batch_sizes[(len(self.batch_sizes) - 1) // 2]
        return self.config(b, self.instances[0], self.delays_ms[0], self.preferred[0])

    def grid(self) -> list[TuneConfig]:
        """Every distinct configuration, in a fixed order (provider, instances, batch, delay, preferred)."""
        out = (
            self.config(b, n, d, p, v)
            for v in self.providers
            for n in self.instances
            for b in self.batch_sizes
            for d in self.delays_ms
            for p in self.preferred
        )
        return list(dict.fromkeys(out))

    def dimensions(self) -> list[Dimension]:
        """The dimensions with more than one value, in climbing order."""
        sizes = {
            "max_batch_size": self.batch_sizes,
            "instances": self.instances,
            "max_queue_delay_ms": self.delays_ms,
            "preferred_batch_sizes": self.preferred,
            "provider": self.providers,
        }
        return [d for d in DIMENSIONS if len(sizes[d]) > 1]

    def neighbours(self, cfg: TuneConfig, dim: Dimension) -> tuple[list[TuneConfig], int]:
        """The configurations along `dim` through `cfg` (ordered, distinct) and the index of `cfg` among them."""
        v = cfg.provider
        if dim == "max_batch_size":
            line = [
                self.config(b, cfg.instances, cfg.max_queue_delay_ms, _pref_of(self, cfg), v) for b in self.batch_sizes
            ]
        elif dim == "instances":
            line = [
                self.config(cfg.max_batch_size, n, cfg.max_queue_delay_ms, cfg.preferred_batch_sizes, v)
                for n in self.instances
            ]
        elif dim == "max_queue_delay_ms":
            line = [
                self.config(cfg.max_batch_size, cfg.instances, d, cfg.preferred_batch_sizes, v) for d in self.delays_ms
            ]
        elif dim == "provider":
            line = [
                self.config(cfg.max_batch_size, cfg.instances, cfg.max_queue_delay_ms, cfg.preferred_batch_sizes, p)
                for p in self.providers
            ]
        else:
            line = [
                self.config(cfg.max_batch_size, cfg.instances, cfg.max_queue_delay_ms, p, v) for p in self.preferred
            ]
        line = list(dict.fromkeys(line))
        return line, line.index(cfg)


def _pref_of(space: TuneSpace, cfg: TuneConfig) -> tuple[int, ...]:
    """The preferred variant a configuration came from (its sizes may have been clipped to its batch size)."""
    for p in space.preferred:
        if tuple(x for x in p if x <= cfg.max_batch_size) == cfg.preferred_batch_sizes:
            return p
    return cfg.preferred_batch_sizes
