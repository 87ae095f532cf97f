"""InferenceService: model lookup, validation against the model signature, image preprocessing, submission
to the dynamic batcher, output selection/classification and response encoding. Transport-free: it takes
bytes and returns bytes + timings; HTTP status codes only travel inside `InferError`s.

Deadline: `default_timeout_ms` from the model config, or the request parameter `timeout` if smaller.
As in Triton's HTTP API, the `timeout` request parameter is in MICROSECONDS.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np

from server import protocol
from server.errors import BadRequest, InferError, NotFound, QueueFull, Unavailable, UnsupportedMediaType
from server.labels import classify
from server.loaded import InferResult, LoadedModel, Timings, exposed_inputs
from server.metrics import ModelMetrics, ServerMetrics
from server.preprocess import output_shape, preprocess_image
from server.protocol import InferRequest, InputTensor, OutputTensor, RequestedOutput
from server.repository import ModelConfig
from server.runtime import TensorSpec

__all__ = ["InferResult", "InferenceService", "LoadedModel", "Timings", "exposed_inputs"]

log = logging.getLogger("server.service")


def _timeout_s(cfg: ModelConfig, params: dict[str, Any]) -> float | None:
    default = cfg.batching.default_timeout_ms / 1000.0 if cfg.batching.default_timeout_ms is not None else None
    t = params.get("timeout")
    if t is None:
        return default
    try:
        t_s = None if isinstance(t, bool) or not isinstance(t, (int, float)) else t / 1e6
    except OverflowError:  # an int too large for a float
        t_s = None
    if t_s is None or not math.isfinite(t_s) or t_s <= 0:  # NaN/Infinity literals parse as floats
        raise BadRequest("parameters.timeout must be a positive number of microseconds")
    return t_s if default is None else min(default, t_s)


class InferenceService:
    def __init__(
        self,
        models: dict[str, LoadedModel],
        metrics: ServerMetrics,
        preprocess_threads: int = 2,
        default_top_k: int = 5,
    ) -> None:
        self.models = models
        self.metrics = metrics
        self.accepting = True
        self.default_top_k = default_top_k
        self._pool = ThreadPoolExecutor(max_workers=preprocess_threads, thread_name_prefix="preprocess")

    # ------------------------------------------------------------------ lookup / metadata

    def get(
        self, name: str, version: str | None = None, *, inference: bool = False, protocol: str = "http"
    ) -> LoadedModel:
        lm = self.models.get(name)
        if lm is None:
            self.metrics.unknown_model.inc()
            raise NotFound(f"unknown model '{name}'")
        if version is not None and version != lm.version:
            if inference:
                lm.metrics_for(protocol).outcome["invalid"].inc()
            raise NotFound(f"model '{name}' has no version '{version}' (available: {lm.version})")
        return lm

    def find(self, name: str) -> LoadedModel | None:
        return self.models.get(name)

    @property
    def ready(self) -> bool:
        return self.accepting and all(m.ready for m in self.models.values())

    def metadata(self, name: str, version: str | None = None) -> dict[str, Any]:
        lm = self.get(name, version)
        return {
            "name": lm.name,
            "versions": [lm.version],
            "platform": lm.cfg.platform,
            "inputs": [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in lm.inputs],
            "outputs": [{"name": s.name, "datatype": s.datatype, "shape": list(s.shape)} for s in lm.outputs],
        }

    def model_config(self, name: str, version: str | None = None) -> dict[str, Any]:
        """Triton's model-configuration extension (JSON form), as perf_analyzer reads it."""
        from server.modelconfig import triton_config

        return triton_config(self.get(name, version))

    # ------------------------------------------------------------------ inference

    async def infer(
        self,
        name: str,
        version: str | None,
        body: bytes,
        header_length: int | None,
        started: float,
        read_done: float | None = None,
    ) -> InferResult:
        """OIP v2 request bytes → response bytes. `started` is `time.perf_counter()` at request arrival,
        `read_done` when its body had been read (Server-Timing `read`; default: `started`)."""
        lm = self.get(name, version, inference=True)
        return await self._guarded(
            lm, started, read_done, lambda t: self._infer_oip(lm, body, header_length, started, t)
        )

    async def infer_image(
        self,
        name: str,
        version: str | None,
        data: bytes,
        started: float,
        top_k: int | None = None,
        read_done: float | None = None,
    ) -> InferResult:
        """One raw encoded image (curl-friendly path). Classifiers answer top-k classification strings."""
        lm = self.get(name, version, inference=True)
        return await self._guarded(lm, started, read_done, lambda t: self._infer_raw_image(lm, data, started, top_k, t))

    async def infer_decoded(
        self,
        lm: LoadedModel,
        req: InferRequest,
        started: float,
        read_done: float | None = None,
        client_timeout_s: float | None = None,
        protocol: str = "grpc",
    ) -> tuple[list[OutputTensor], Timings]:
        """A request its transport decoded already (gRPC: tensors from the protobuf message) → its outputs and
        timings. `lm` was admitted (`admit`); `client_timeout_s`: the transport's own deadline (gRPC's), if any,
        beside the model's `default_timeout_ms` and the request's `timeout` parameter (the smallest wins)."""

        async def work(t: Timings) -> tuple[list[OutputTensor], Timings]:
            deadline = _deadline(lm.cfg, req.parameters, started)
            if client_timeout_s is not None:
                own = time.monotonic() - (time.perf_counter() - started) + client_timeout_s
                deadline = own if deadline is None else min(deadline, own)
            if lm.image_tensor is None:
                tensors = self._validate(lm, req)
            else:
                tensors = {lm.image_tensor: await self._preprocess_images(lm, self._image_elements(lm, req))}
            t.preprocess_s = time.perf_counter() - started - (t.read_s or 0.0)
            outcome = await lm.batcher.submit(tensors, deadline=deadline)
            t.queue_s, t.compute_s, t.batch_size = outcome.queue_s, outcome.compute_s, outcome.batch_size
            return self.select_outputs(lm, req, outcome.outputs), t

        return await self._guarded(lm, started, read_done, work, protocol)

    def admit(self, name: str, version: str | None = None, protocol: str = "http") -> LoadedModel:
        """Admission before ingestion (server/admission.py): called when a request's headers have arrived, before
        its body is read. Returns the model with the request counted in; the caller must `lm.admission.leave()`.
        Refusals (404, 503) are counted here and cost no body read."""
        lm = self.get(name, version, inference=True, protocol=protocol)
        if not self.accepting:
            err: InferError = Unavailable("server is shutting down")
        elif not lm.ready:
            err = Unavailable(f"model '{lm.name}' is not ready")
        elif lm.admission.try_enter():
            return lm
        else:
            err = QueueFull(
                f"model '{lm.name}' is at its limit of {lm.admission.limit} requests in progress "
                "(being read, queued or running): retry later"
            )
        lm.metrics_for(protocol).outcome[err.outcome].inc()
        raise err

    def count_rejected(self, name: str, exc: InferError, protocol: str = "http") -> None:
        """Count an error the transport raised before the service ran (413, 415, 401), if the model is known."""
        lm = self.models.get(name)
        if lm is not None:
            lm.metrics_for(protocol).outcome[exc.outcome].inc()
        else:
            self.metrics.unknown_model.inc()

    async def _guarded(
        self, lm: LoadedModel, started: float, read_done: float | None, work, protocol: str = "http"
    ) -> Any:
        mm = lm.metrics_for(protocol)
        timings = Timings()
        if read_done is not None:
            timings.read_s = read_done - started
        try:  # admitted already (admit): a request whose headers arrived before a drain began is served
            result = await work(timings)
        except InferError as e:
            self.account(lm, started, timings, e.outcome, mm)
            e.timings = timings  # type: ignore[attr-defined]
            raise
        except asyncio.CancelledError:
            self.account(lm, started, timings, "cancelled", mm)
            raise
        except Exception as e:  # a bug: never leak internals to the client
            err = self.internal_error(lm, e)
            self.account(lm, started, timings, "error", mm)
            err.timings = timings  # type: ignore[attr-defined]
            raise err from e
        self.account(lm, started, timings, "success", mm)
        return result

    @staticmethod
    def internal_error(lm: LoadedModel, e: Exception) -> InferError:
        """A bug: logged with its traceback; the client gets a message without internals."""
        log.error("model %s: unexpected error", lm.name, exc_info=e)
        return InferError(f"internal error while serving model '{lm.name}' ({type(e).__name__})")

    @staticmethod
    def account(lm: LoadedModel, started: float, t: Timings, outcome: str, mm: ModelMetrics | None = None) -> None:
        """Count a finished request (outcome: success|rejected|timeout|invalid|error|cancelled) and its durations
        (in `mm`, the metrics of the protocol that took it; default: HTTP's)."""
        mm = mm or lm.metrics
        mm.outcome[outcome].inc()
        t.total_s = time.perf_counter() - started
        mm.request_duration.observe(t.total_s)
        if t.preprocess_s is not None:
            mm.preprocess_duration.observe(t.preprocess_s)
        if t.compute_s is not None:
            mm.queue_duration.observe(t.queue_s or 0.0)
            mm.compute_duration.observe(t.compute_s)

    def prepare_oip(
        self, lm: LoadedModel, body: bytes, header_length: int | None, started: float, t: Timings
    ) -> tuple[InferRequest, dict[str, np.ndarray], float | None]:
        """The synchronous part of an OIP request to a tensor model (no image preprocessing): decode, deadline,
        validation. Returns (request, tensors for the batcher, deadline); raises InferError."""
        req = protocol.decode_request(body, header_length)
        deadline = _deadline(lm.cfg, req.parameters, started)
        tensors = self._validate(lm, req)
        t.preprocess_s = time.perf_counter() - started - (t.read_s or 0.0)
        return req, tensors, deadline

    def finish(self, lm: LoadedModel, req: InferRequest, outcome: Any, t: Timings) -> InferResult:
        """A batch outcome (`BatchOutcome`) → the encoded response; raises InferError (e.g. an unknown output)."""
        t.queue_s = outcome.queue_s
        t.compute_s = outcome.compute_s
        t.batch_size = outcome.batch_size
        return self._encode(lm, req, outcome.outputs, t)

    async def _infer_oip(self, lm: LoadedModel, body: bytes, header_length: int | None, started: float, t: Timings):
        if lm.image_tensor is None:
            req, tensors, deadline = self.prepare_oip(lm, body, header_length, started, t)
        else:
            req = protocol.decode_request(body, header_length)
            deadline = _deadline(lm.cfg, req.parameters, started)
            images = self._image_elements(lm, req)
            tensors = {lm.image_tensor: await self._preprocess_images(lm, images)}
            t.preprocess_s = time.perf_counter() - started - (t.read_s or 0.0)
        # the batcher's is the one deadline check (it counts the drop)
        return self.finish(lm, req, await lm.batcher.submit(tensors, deadline=deadline), t)

    async def _infer_raw_image(self, lm: LoadedModel, data: bytes, started: float, top_k: int | None, t: Timings):
        if lm.image_tensor is None:
            raise UnsupportedMediaType(
                f"model '{lm.name}' takes tensors, not encoded images: send OIP v2 JSON/binary "
                f"(image models: {', '.join(n for n, m in self.models.items() if m.image_tensor) or 'none'})"
            )
        deadline = _deadline(lm.cfg, {}, started)
        tensors = {lm.image_tensor: await self._preprocess_images(lm, [data])}
        t.preprocess_s = time.perf_counter() - started - (t.read_s or 0.0)
        outcome = await lm.batcher.submit(tensors, deadline=deadline)
        if lm.cfg.kind == "classification":
            k = top_k or self.default_top_k
            req_out = [RequestedOutput(lm.outputs[0].name, {"classification": k})]
        else:
            req_out = None
        return self.finish(lm, InferRequest(inputs=[], outputs=req_out), outcome, t)

    # ------------------------------------------------------------------ validation

    def _validate(self, lm: LoadedModel, req: InferRequest) -> dict[str, np.ndarray]:
        specs = lm.input_by_name
        tensors: dict[str, np.ndarray] = {}
        for inp in req.inputs:
            spec = specs.get(inp.name)
            if spec is None:
                raise BadRequest(f"model '{lm.name}' has no input '{inp.name}' (inputs: {', '.join(specs)})")
            if inp.datatype != spec.datatype:
                raise BadRequest(
                    f"input '{inp.name}': datatype {inp.datatype} does not match the model's {spec.datatype} (no implicit casts)"
                )
            _check_shape(inp, spec)
            tensors[inp.name] = inp.data  # the batch dimension is checked once, by the batcher (collate.rows)
        missing = [s for s in specs if s not in tensors]
        if missing:
            raise BadRequest(f"model '{lm.name}': missing input(s) {', '.join(missing)}")
        return tensors

    def _image_elements(self, lm: LoadedModel, req: InferRequest) -> list[bytes]:
        name = lm.inputs[0].name
        if len(req.inputs) != 1 or req.inputs[0].name != name:
            got = ", ".join(i.name for i in req.inputs)
            raise BadRequest(f"model '{lm.name}' takes exactly one input '{name}' (BYTES, shape [n]); got: {got}")
        inp = req.inputs[0]
        if inp.datatype != "BYTES":
            raise BadRequest(f"input '{name}': datatype must be BYTES (encoded JPEG/PNG files), got {inp.datatype}")
        if len(inp.shape) not in (1, 2) or (len(inp.shape) == 2 and inp.shape[1] != 1):
            raise BadRequest(f"input '{name}': shape must be [n] (or [n, 1]), got {inp.shape}")
        lm.batcher.check_items(inp.shape[0])  # before decoding: an oversized request costs nothing
        return list(inp.data.reshape(-1))

    async def _preprocess_images(self, lm: LoadedModel, images: list[bytes]) -> np.ndarray:
        cfg = lm.cfg.image
        assert cfg is not None
        loop = asyncio.get_running_loop()
        if len(images) == 1:
            one = await loop.run_in_executor(self._pool, preprocess_image, images[0], cfg)
            return one[None]
        out = np.empty((len(images), *output_shape(cfg)), dtype=np.float32)
        arrays = await asyncio.gather(*(loop.run_in_executor(self._pool, preprocess_image, b, cfg) for b in images))
        for i, a in enumerate(arrays):
            out[i] = a
        return out

    # ------------------------------------------------------------------ outputs

    def _encode(self, lm: LoadedModel, req: InferRequest, outputs: dict[str, np.ndarray], t: Timings) -> InferResult:
        body, hl = protocol.encode_response(lm.name, lm.version, self.select_outputs(lm, req, outputs), req.id)
        return InferResult(body, hl, t)

    def select_outputs(self, lm: LoadedModel, req: InferRequest, outputs: dict[str, np.ndarray]) -> list[OutputTensor]:
        """The outputs a request asked for (all by default), classified where it asked for `classification`."""
        default_binary = req.binary_output_default
        wanted = req.outputs if req.outputs is not None else [RequestedOutput(s.name) for s in lm.outputs]
        result: list[OutputTensor] = []
        for ro in wanted:
            if ro.name not in lm.output_names:
                raise BadRequest(
                    f"model '{lm.name}' has no output '{ro.name}' (outputs: {', '.join(sorted(lm.output_names))})"
                )
            arr = outputs[ro.name]
            binary = ro.binary if ro.binary is not None else default_binary
            k = ro.classification
            if k is not None:
                if arr.ndim < 1 or arr.size == 0:
                    raise BadRequest(f"output '{ro.name}' cannot be classified (shape {list(arr.shape)})")
                scores = arr.reshape(arr.shape[0], -1) if arr.ndim > 1 else arr
                result.append(OutputTensor(ro.name, "BYTES", classify(scores, k, lm.labels), binary))
            else:
                dt = next(s.datatype for s in lm.outputs if s.name == ro.name)
                result.append(OutputTensor(ro.name, dt, arr, binary))
        return result

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def _check_shape(inp: InputTensor, spec: TensorSpec) -> None:
    if len(inp.shape) != len(spec.shape):
        raise BadRequest(
            f"input '{inp.name}': shape {inp.shape} has {len(inp.shape)} dims; the model expects {spec.shape}"
        )
    for got, want in zip(inp.shape, spec.shape):
        if want != -1 and got != want:
            raise BadRequest(f"input '{inp.name}': shape {inp.shape} does not match the model's {spec.shape}")


def _deadline(cfg: ModelConfig, params: dict[str, Any], started: float) -> float | None:
    timeout = _timeout_s(cfg, params)
    if timeout is None:
        return None
    return time.monotonic() - (time.perf_counter() - started) + timeout
