"""Scenario: everything that defines one load-generation run (pinned API; sweeps and reports use it).

A scenario is typed and validated at the edge. It can come from CLI flags, from a TOML file
(`Scenario.from_toml(path, **overrides)`: fields at top level or under a `[scenario]` table), or both
(flags override the file). `mode` may be omitted: it is inferred from `rate_rps` (open) or `users` (closed).
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializationInfo, ValidationError, field_serializer, model_validator


class ScenarioError(ValueError):
    """A scenario that cannot run; the message names the source, the field and the fix."""


class Scenario(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())

    target: str
    """Base URL of the OIP v2 server, e.g. http://127.0.0.1:8000"""
    model: str
    mode: Literal["open", "closed"]
    rate_rps: float | None = None
    """Open loop: target arrival rate (requests/s, all workers together)."""
    arrival: str = "poisson"
    """Open loop: poisson | constant | burst (Poisson during on periods of `burst_on_s`, silent for `burst_off_s`;
    rate_rps is the rate while on) | trace:FILE[:COLUMN] (replay recorded request instants; rate_rps, if given,
    rescales the trace to that mean rate, or `speedup` divides its offsets). See loadgen.engine.arrivals."""
    ramp: str | None = None
    """Open loop: START:END:DURATION (e.g. "10:200:60s"): the rate rises linearly from START to END req/s over
    DURATION after the warm-up (which runs at START), then holds END; arrival poisson or constant. Replaces rate_rps."""
    speedup: float | None = None
    """Trace replay: divide the trace's offsets by this (2 = twice as fast). Exclusive with rate_rps."""
    burst_on_s: float = 1.0
    burst_off_s: float = 4.0
    users: int | None = None
    """Closed loop: number of concurrent users (each sends, waits for the answer, thinks)."""
    think_time_ms: float = 0
    duration_s: float = 10
    """Measurement window (requests *scheduled* inside it count)."""
    warmup_s: float = 2
    payload: Literal["binary", "json", "image"] = "binary"
    batch: int = 1
    """Items per request (client-side batch)."""
    images_dir: str | None = None
    timeout_ms: float = 30000
    seed: int = 1
    slo_p99_ms: float | None = None
    """Latency bound (ms) on `slo_percentile` (p99 unless told otherwise; the name is schema-1's). Set, the run
    gets a pass / fail / undecided SLO verdict with `confidence`."""
    slo_percentile: float = 99.0
    confidence: float = 0.99
    """Confidence of every upper bound on a percentile and of the SLO verdict (loadgen.results.confidence)."""
    workers: int = 0
    """0 = generate load in this process; N = N local Locust worker processes (master in-process)."""
    max_in_flight: int = 10000
    """Open loop cap on requests in flight (split evenly across workers); hitting it is a client-side drop."""
    late_threshold_ms: float = 2.0
    """Open loop: a request sent more than this after its scheduled instant counts as delayed (reported as
    `delayed_fraction`). Latency is measured from the scheduled instant either way, so lateness is never hidden;
    it makes a run INVALID only when it could change the answer (see loadgen.results.analysis: `lag_material`)."""

    # ---- the target: how to reach the server (loadgen.engine.target; every transport uses the same options) -----
    headers: list[str] = Field(default_factory=list, repr=False)
    """Extra request headers, "Name: value" each (auth tokens, a `Host` override for an ingress). Values of
    credential-like headers (Authorization, Cookie, *token*, *key*, *secret*, ...) are redacted in every dump
    (result JSON, logs, reports) unless dumped with context {"secrets": True} (worker hand-over only)."""
    bearer_token_file: str | None = None
    """File holding a bearer token (sent as `Authorization: Bearer ...`); INFERLOAD_BEARER_TOKEN works too."""
    ca_file: str | None = None
    """https: PEM bundle of the CA(s) that signed the server's certificate (default: the system's store)."""
    client_cert: str | None = None
    """https: client certificate (PEM) for mutual TLS; with client_key (or a PEM holding both)."""
    client_key: str | None = None
    insecure: bool = False
    """https: do not verify the server's certificate (testing only; reported in the result)."""
    model_version: str | None = None
    """OIP: address /v2/models/{model}/versions/{model_version}/... instead of the default version."""

    # ---- what to send ----------------------------------------------------------------------------------------------
    protocol: Literal["oip", "grpc", "http-json"] = "oip"
    """oip: Open Inference Protocol v2 REST (payload binary | json | image). grpc: the OIP gRPC service
    (inference.GRPCInferenceService/ModelInfer, tensors in raw_input_contents; payload binary | image) at a
    grpc://HOST:PORT or grpcs://HOST:PORT (TLS) target, as Triton, KServe, MLServer and `inferload serve` serve it.
    http-json: any JSON-over-HTTP endpoint (TorchServe, TF Serving, LitServe, BentoML, your own): POST `path` with
    `body_template` filled in."""
    path: str | None = None
    """http-json: the request path below the target's prefix, e.g. /predictions/resnet or /v1/models/m:predict."""
    body_template: str | None = None
    """http-json: a file holding the request body with placeholders (loadgen.engine.template)."""
    expect: str | None = None
    """http-json: success also needs this in the JSON answer: a JSON pointer (RFC 6901), e.g. /predictions/0,
    optionally `POINTER=VALUE` (the value compared as JSON)."""
    input_data: str | None = None
    """Your own inputs: perf_analyzer's --input-data JSON file, .npy (the model's only input) or .npz (key = input
    name), or perf_analyzer's keywords `zero` / `random`. Entries are used in order (or shuffled by the seed with
    input_order = "random"); each "data" entry is one batch item, request n carries entries n*batch .. n*batch+batch-1.
    A `validation_data` list makes every answer checked (a mismatch fails with code `invalid_output`)."""
    input_order: Literal["sequential", "random"] = "sequential"
    shapes: dict[str, list[int]] = Field(default_factory=dict)
    """Concrete shapes for inputs with dynamic dimensions, perf_analyzer's `--shape` convention: OIP, the dims after
    the batch dimension when the model batches (max_batch_size > 0), the full shape otherwise: {"input": [3, 224, 224]}
    (CLI: --shape input:3,224,224). protocol http-json: the tensor's full shape as the template renders it."""
    outputs: list[str] = Field(default_factory=list)
    """OIP: ask for only these outputs (default: all)."""
    server_metrics: str | None = None
    """Prometheus text endpoint of the server (default for inferload's own server: target + /metrics; Triton serves
    its own on port 8002). Read before and after the measurement window."""

    @model_validator(mode="before")
    @classmethod
    def _infer_mode(cls, data: Any) -> Any:
        if isinstance(data, dict) and data.get("mode") is None:
            data = dict(data)
            arrival = str(data.get("arrival") or "")
            if data.get("rate_rps") is not None or data.get("ramp") is not None or arrival.startswith("trace:"):
                data["mode"] = "open"
            elif data.get("users") is not None:
                data["mode"] = "closed"
        return data

    @model_validator(mode="after")
    def _check(self) -> Scenario:
        if self.protocol == "grpc":
            if not self.target.startswith(("grpc://", "grpcs://", "http://", "https://")):
                raise ValueError(f"target {self.target!r}: protocol 'grpc' needs grpc://HOST:PORT or grpcs://HOST:PORT")
            if self.target.split("://", 1)[1].partition("/")[2].strip("/"):
                raise ValueError(f"target {self.target!r}: gRPC has no path prefix (the service name is the path)")
            if self.payload == "json":
                raise ValueError(
                    "protocol 'grpc' sends tensors in raw_input_contents: use payload binary (or image); "
                    "payload 'json' is OIP REST's"
                )
        elif not self.target.startswith(("http://", "https://")):
            raise ValueError(f"target {self.target!r} must be an http:// or https:// URL")
        self._check_arrival()
        if self.mode == "closed" and (self.users is None or self.users < 1):
            raise ValueError("mode 'closed' needs users >= 1 (CLI: --users N)")
        for name in ("duration_s", "timeout_ms", "late_threshold_ms"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be > 0")
        for name in ("warmup_s", "think_time_ms"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if not 0 < self.slo_percentile < 100:
            raise ValueError("slo_percentile must be in (0, 100), e.g. 99")
        if not 0.5 <= self.confidence < 1:
            raise ValueError("confidence must be in [0.5, 1), e.g. 0.99")
        if self.batch < 1:
            raise ValueError("batch must be >= 1")
        if self.workers < 0:
            raise ValueError("workers must be >= 0")
        if self.max_in_flight < 1:
            raise ValueError("max_in_flight must be >= 1")
        if self.images_dir is not None and self.payload != "image" and self.protocol != "http-json":
            raise ValueError(
                "images_dir needs payload 'image' (or protocol 'http-json' with {{image:...}} placeholders)"
            )
        self._check_target()
        return self

    def _check_target(self) -> None:
        from loadgen.engine.target import TargetError, parse_headers

        try:
            parse_headers(self.headers)
        except TargetError as e:
            raise ValueError(str(e)) from None
        if (self.client_cert is None) != (self.client_key is None) and self.client_key is not None:
            raise ValueError("client_key needs client_cert (the certificate it belongs to)")
        if (self.ca_file or self.client_cert or self.insecure) and not self.target.startswith(("https://", "grpcs://")):
            raise ValueError("ca_file / client_cert / insecure apply to an https:// (or grpcs://) target")
        if self.protocol == "http-json":
            if not self.path or not self.body_template:
                raise ValueError("protocol 'http-json' needs path (CLI: --path) and body_template (--body-template)")
            if self.payload == "image":
                raise ValueError("protocol 'http-json' takes its body from body_template, not payload 'image'")
        elif self.path or self.body_template or self.expect:
            raise ValueError("path / body_template / expect apply to protocol 'http-json'")
        for name, dims in self.shapes.items():
            if not dims or any(d < 1 for d in dims):
                raise ValueError(f"shape of {name!r} must list dimensions >= 1, got {dims}")

    @field_serializer("headers")
    def _redact_headers(self, headers: list[str], info: SerializationInfo) -> list[str]:
        from loadgen.engine.target import redact_headers

        ctx = info.context if isinstance(info.context, dict) else {}
        return list(headers) if ctx.get("secrets") else redact_headers(headers)

    @field_serializer("target")
    def _redact_target(self, target: str, info: SerializationInfo) -> str:
        from loadgen.engine.target import redact_url

        ctx = info.context if isinstance(info.context, dict) else {}
        return target if ctx.get("secrets") else redact_url(target)

    def with_secrets(self) -> dict[str, Any]:
        """Every field as given (credentials included): only for handing the scenario to this run's own workers."""
        return self.model_dump(mode="json", context={"secrets": True})

    def _check_arrival(self) -> None:
        from loadgen.engine.arrivals import ArrivalError, parse_ramp, parse_trace_spec

        trace = self.arrival.startswith("trace:")
        if self.arrival not in ("poisson", "constant", "burst") and not trace:
            raise ValueError(f"arrival {self.arrival!r}: expected poisson | constant | burst | trace:FILE[:COLUMN]")
        if self.mode == "closed" and (trace or self.ramp is not None or self.arrival == "burst"):
            raise ValueError("arrival shapes (burst, trace, ramp) need mode 'open'")
        if self.mode == "open" and self.ramp is None and not trace and (self.rate_rps is None or self.rate_rps <= 0):
            raise ValueError("mode 'open' needs rate_rps > 0 (CLI: --rate R)")
        try:
            if self.ramp is not None:
                parse_ramp(self.ramp)
                if self.rate_rps is not None or self.arrival not in ("poisson", "constant"):
                    raise ValueError("ramp sets the rate: drop rate_rps, and use arrival poisson or constant")
            if trace:
                spec = parse_trace_spec(self.arrival)
                if not spec.path.is_file():
                    raise ValueError(f"arrival {self.arrival!r}: trace file {spec.path} not found")
        except ArrivalError as e:
            raise ValueError(str(e)) from None
        if self.speedup is not None and (not trace or self.speedup <= 0 or self.rate_rps is not None):
            raise ValueError("speedup (> 0) applies to a trace replay only, and not together with rate_rps")
        if self.burst_on_s <= 0 or self.burst_off_s < 0:
            raise ValueError("burst_on_s must be > 0 and burst_off_s >= 0")

    @property
    def end_s(self) -> float:
        """Offset (from t0) where scheduling / sending stops: warm-up + measurement."""
        return self.warmup_s + self.duration_s

    @property
    def longest_s(self) -> float:
        """The longest a run may take before whoever waits for it gives up: its schedule, one request timeout to
        drain, and 30 s for the hand-over."""
        return self.end_s + self.timeout_ms / 1000 + 30.0

    @classmethod
    def from_toml(cls, path: str | Path, defaults: dict[str, Any] | None = None, **overrides: Any) -> Scenario:
        """Load a scenario file; keyword overrides whose value is None are ignored (unset CLI flags); `defaults` fill
        what neither the file nor the overrides set."""
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text())
        except FileNotFoundError as e:
            raise ScenarioError(f"{path}: file not found") from e
        except tomllib.TOMLDecodeError as e:
            raise ScenarioError(f"{path}: invalid TOML: {e}") from e
        if isinstance(raw.get("scenario"), dict):
            raw = {**{k: v for k, v in raw.items() if k != "scenario"}, **raw["scenario"]}
        data = {**(defaults or {}), **raw, **{k: v for k, v in overrides.items() if v is not None}}
        return cls.build(data, source=str(path))

    @classmethod
    def build(cls, data: dict[str, Any], source: str = "scenario") -> Scenario:
        """Validate a dict; on error raise ScenarioError naming the source and each bad field."""
        try:
            return cls.model_validate(data)
        except ValidationError as e:
            lines = []
            for err in e.errors():
                loc = ".".join(str(x) for x in err["loc"]) or "(scenario)"
                lines.append(f"{source}: field {loc}: {err['msg']}")
            raise ScenarioError("\n".join(lines)) from None
