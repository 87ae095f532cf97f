"""Server settings: typed, validated, from `INFERLOAD_*` environment variables or `python -m server` flags.

Examples:
    INFERLOAD_MODELS_DIR=/models INFERLOAD_HOST=0.0.0.0 python -m server
    INFERLOAD_MODEL_NAMES=tiny_classifier,tiny_detector python -m server
    INFERLOAD_OVERRIDES='{"batching": {"max_queue_delay_ms": 2}}' python -m server
    INFERLOAD_MODEL_OVERRIDES='{"resnet50": {"instances": {"count": 2}}}' python -m server
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict


class ServerSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INFERLOAD_", extra="ignore", protected_namespaces=())

    models_dir: Path = Field(
        Path("models"), description="Model repository: folders holding config.toml (+ the ONNX file)."
    )
    host: str = Field("127.0.0.1", description="Bind address. Loopback by default; containers set 0.0.0.0 explicitly.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port.")
    grpc_port: int = Field(
        8001,
        ge=0,
        le=65535,
        description="TCP port of the OIP gRPC service (inference.GRPCInferenceService, as Triton's) on the same host; "
        "0: no gRPC.",
    )
    model_names: Annotated[list[str] | None, NoDecode] = Field(
        None, description="Serve only these models (comma-separated or JSON list in the environment); default: all."
    )
    max_body_bytes: int = Field(64 * 1024 * 1024, ge=1024, description="Largest request body accepted; larger → 413.")
    max_header_bytes: int = Field(
        16 * 1024,
        ge=1024,
        le=64 * 1024 * 1024,
        description="Largest request head (request line + header fields, as sent) accepted; larger → 431.",
    )
    max_connections: int = Field(
        1024,
        ge=1,
        le=1_000_000,
        description="Open connections (and requests in progress) at once; beyond it uvicorn answers 503 at once "
        "(limit_concurrency). Each connection buffers at most 64 KiB of a body it is not reading.",
    )
    auth_token: SecretStr | None = Field(
        None,
        description="If set, inference requests need 'Authorization: Bearer <token>' (401 otherwise). Never logged.",
    )
    log_level: Literal["critical", "error", "warning", "info", "debug"] = Field("info", description="Log level.")
    drain_timeout_s: float = Field(
        30.0, ge=0, description="On SIGTERM: longest wait for in-flight requests before exiting."
    )
    shutdown_delay_s: float = Field(
        0.0,
        ge=0,
        le=300,
        description="On SIGTERM: keep the listener open this long with readiness 503 (lets load balancers notice) before draining.",
    )
    warmup: bool = Field(True, description="Run one inference per model instance before reporting ready.")
    overrides: dict[str, Any] = Field(
        default_factory=dict,
        description='Config overrides merged into every model\'s config.toml (JSON in the environment), e.g. {"batching": {"max_queue_size": 1}}.',
    )
    model_overrides: dict[str, dict[str, Any]] = Field(
        default_factory=dict,
        description='Per-model overrides, applied after `overrides`: {"<model>": {...}} (JSON in the environment).',
    )
    preprocess_threads: int | None = Field(
        None, ge=1, le=256, description="Threads decoding images (default: usable CPUs)."
    )
    malloc_tuning: bool = Field(
        True,
        description="glibc: keep large request buffers in the heap (no mmap/munmap and page faults per "
        "request; freed memory up to 32 MiB per arena may stay resident). See server/malloc.py.",
    )
    default_top_k: int = Field(
        5, ge=1, le=1000, description="Classes returned for a raw image POST (Content-Type image/*) to a classifier."
    )
    fast_path: Literal["auto", "off"] = Field(
        "auto",
        description="auto: plain infer requests are served by the HTTP protocol itself (server/fastpath.py) when "
        "this uvicorn and httptools pass the start-up self-check (otherwise one warning, and the ASGI path); "
        "off: every request takes the ASGI path, and the fast path's internals are not checked.",
    )

    @field_validator("model_names", mode="before")
    @classmethod
    def _split_names(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.strip()
            if v.startswith("["):
                import json

                return json.loads(v)
            return [n.strip() for n in v.split(",") if n.strip()] or None
        return v

    def public_dict(self) -> dict[str, Any]:
        """Settings safe to log (the token is masked)."""
        d = self.model_dump()
        d["auth_token"] = "***" if self.auth_token else None
        d["models_dir"] = str(self.models_dir)
        return d


def parse_override(text: str) -> tuple[str | None, dict[str, Any]]:
    """`[model:]dotted.key=value` → (model or None, nested dict). The value is JSON if it parses, else a string.

    >>> parse_override("batching.max_queue_size=1")
    (None, {'batching': {'max_queue_size': 1}})
    >>> parse_override("resnet50:instances.count=2")
    ('resnet50', {'instances': {'count': 2}})
    """
    import json

    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ValueError(f"override {text!r} must look like [model:]section.field=value")
    model = None
    if ":" in key:
        model, key = key.split(":", 1)
        model = model.strip() or None
    try:
        value: Any = json.loads(raw)
    except json.JSONDecodeError:
        value = raw
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ValueError(f"override {text!r} has an empty key")
    out: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        out = {p: out}
    return model, out


def settings_from_options(override: list[str] | None = None, **options: Any) -> ServerSettings:
    """Settings from command-line options (None = not given, so INFERLOAD_* env vars and defaults apply)."""
    from server.repository import deep_merge

    given = {k: v for k, v in options.items() if v is not None}
    base = ServerSettings(**given)
    if not override:
        return base
    overrides = dict(base.overrides)
    per_model = {k: dict(v) for k, v in base.model_overrides.items()}
    for text in override:
        model, tree = parse_override(text)
        if model is None:
            overrides = deep_merge(overrides, tree)
        else:
            per_model[model] = deep_merge(per_model.get(model, {}), tree)
    return base.model_copy(update={"overrides": overrides, "model_overrides": per_model})
