"""The FastAPI application and its life cycle.

Startup (lifespan): load the repository (a bad config → ConfigError: the process exits non-zero with the
reason), build missing built-in model files, create the ONNX Runtime instances and one DynamicBatcher per
model, warm up every instance, then report ready. uvicorn only opens the listening socket after this.

Shutdown (SIGTERM, see `serve`): readiness flips to 503 and new inference gets 503 at once (optionally the
listener stays open `shutdown_delay_s` so load balancers notice); then uvicorn stops accepting connections
and waits for in-flight requests (up to `drain_timeout_s`); then the batchers drain and the process exits 0.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
from collections.abc import Iterable
from contextlib import asynccontextmanager
from types import FrameType

import prometheus_client
import uvicorn
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector

from server.admission import Admission, default_limit
from server.cpus import available_cpus
from server.dispatch import ASGI, asgi_route
from server.infer_http import InferEndpoint
from server.labels import load_labels
from server.metrics import ServerMetrics
from server.providers import ProviderError, check_available
from server.repository import ConfigError, ModelConfig, deep_merge, ensure_built, load_model_config, load_repository
from server.responses import head_too_large, method_not_allowed, send_reply
from server.service import InferenceService, LoadedModel, exposed_inputs
from server.settings import ServerSettings

log = logging.getLogger("server")
VERSION = "0.1.0"


def load_configs(settings: ServerSettings) -> dict[str, ModelConfig]:
    """Repository + global overrides + per-model overrides. Raises ConfigError."""
    cfgs = load_repository(settings.models_dir, settings.model_names, settings.overrides or None)
    for name, extra in settings.model_overrides.items():
        if name not in cfgs:
            raise ConfigError(
                f"model_overrides names model '{name}', which is not loaded (loaded: {', '.join(cfgs) or 'none'})"
            )
        cfgs[name] = load_model_config(cfgs[name].directory, deep_merge(settings.overrides, extra))
    if not cfgs:
        raise ConfigError(f"model repository {settings.models_dir} holds no models (folders with a config.toml)")
    return cfgs


def check_providers_installed(cfgs: Iterable[ModelConfig]) -> None:
    """Refuse (ProviderError) before anything is built when a model asks for a provider this ONNX Runtime lacks."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    for cfg in cfgs:
        where = f"{cfg.directory / 'config.toml'} [instances]" if cfg.directory is not None else cfg.name
        check_available(cfg.instances.provider, available, allow_fallback=cfg.instances.allow_fallback, where=where)


def _load_model(cfg: ModelConfig, metrics: ServerMetrics) -> LoadedModel:
    from server.batching.batcher import DynamicBatcher
    from server.runtime import load_instances

    instances = load_instances(cfg)
    first = instances[0]
    for note in dict.fromkeys(w for i in instances for w in i.warnings):
        log.warning("model %s: %s", cfg.name, note)
    try:
        inputs, image_tensor = exposed_inputs(cfg, first.inputs)
    except ValueError as e:
        raise ConfigError(f"{cfg.directory}/config.toml: {e}") from None
    metrics.add_model(cfg.name, len(instances), provider=first.provider)
    batcher = DynamicBatcher(
        cfg.name,
        instances,
        max_batch_size=cfg.max_batch_size,
        max_queue_delay_ms=cfg.batching.max_queue_delay_ms,
        preferred_batch_sizes=cfg.batching.preferred_batch_sizes,
        max_queue_size=cfg.batching.max_queue_size,
        observer=metrics.observer(cfg.name),
    )
    limit = cfg.batching.max_admitted or default_limit(
        cfg.batching.max_queue_size, cfg.instances.count, cfg.max_batch_size
    )
    metrics.admission_limit.labels(cfg.name).set(limit)
    admission = Admission(limit)
    metrics.track_admission(cfg.name, lambda: admission.current)
    lm = LoadedModel(
        cfg=cfg,
        admission=admission,
        batcher=batcher,
        inputs=inputs,
        outputs=list(first.outputs),
        onnx_inputs=list(first.inputs),
        labels=load_labels(cfg.labels_path),
        metrics=metrics.model(cfg.name),
        grpc_metrics=metrics.model(cfg.name, "grpc"),
        image_tensor=image_tensor,
        instances=instances,
    )
    return lm


def _warm_up(lm: LoadedModel) -> None:
    from server.runtime import random_inputs

    for inst in lm.instances:
        try:
            inst.run(random_inputs(inst.inputs, 1))
        except Exception as e:  # a model with unusual dynamic dims may reject random inputs: not fatal
            log.warning("model %s: warm-up inference failed (%s); serving anyway", lm.name, e)


def build_service(settings: ServerSettings, metrics: ServerMetrics) -> InferenceService:
    """Blocking: load, build, create sessions and batchers, warm up. Raises ConfigError."""
    cfgs = load_configs(settings)
    for cfg in cfgs.values():
        if ensure_built(cfg):
            log.info("model %s: built %s", cfg.name, cfg.model_path)
    models: dict[str, LoadedModel] = {}
    for name, cfg in cfgs.items():
        models[name] = _load_model(cfg, metrics)
    if settings.warmup:
        for lm in models.values():
            _warm_up(lm)
    return InferenceService(
        models,
        metrics,
        preprocess_threads=settings.preprocess_threads or available_cpus(),
        default_top_k=settings.default_top_k,
    )


async def _stop_batchers(service: InferenceService, timeout_s: float) -> None:
    await asyncio.gather(
        *(lm.batcher.stop(drain=True, timeout_s=timeout_s) for lm in service.models.values()),
        return_exceptions=True,
    )


class InferloadApp(FastAPI):
    """FastAPI, except that the ASGI path's rule (server/dispatch.py `asgi_route`) comes first: a request head over
    `max_header_bytes` gets 431 (whatever protocol uvicorn runs), and an infer request goes straight to the plain ASGI
    infer endpoint (server/infer_http.py), past the middleware stack and the router (at batch 1 those layers were a
    large part of the server's own CPU per request), counted in `inferload_http_path_requests_total{path="asgi"}`.
    Every other route is FastAPI's."""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            state = self.state
            limit = state.settings.max_header_bytes
            route = asgi_route(scope, limit, state.fast_path_state)
            if route.reason is not None:
                state.metrics.http_paths.inc(ASGI, route.reason)
            if route.head_too_large:
                log.info("refused a request head of %d bytes (limit %d) with 431", route.head_size, limit)
                await send_reply(send, head_too_large(route.head_size, limit), close=True)
                return
            if route.infer is not None:
                await state.infer_endpoint.handle(scope, receive, send, *route.infer, route.headers)
                return
            if route.wrong_method:
                await send_reply(send, method_not_allowed(b"POST"))
                return
        await super().__call__(scope, receive, send)


def create_app(settings: ServerSettings | None = None, registry: CollectorRegistry | None = None) -> FastAPI:
    from server.routes import install

    settings = settings or ServerSettings()
    if registry is None:
        prometheus_client.disable_created_metrics()  # no *_created series: half the scrape, same information
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        PlatformCollector(registry=registry)
        GCCollector(registry=registry)
    metrics = ServerMetrics(registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.loop = asyncio.get_running_loop()
        try:
            service = await asyncio.to_thread(build_service, settings, metrics)
        except (ConfigError, ProviderError) as e:
            app.state.startup_error = str(e)
            log.error("configuration error:\n%s", e)
            raise
        except Exception as e:
            app.state.startup_error = f"{type(e).__name__}: {e}"
            raise
        for lm in service.models.values():
            lm.batcher.start()
            lm.ready = True
            metrics.model_ready.labels(lm.name).set(1)
        app.state.service = service
        grpc_front = None
        if settings.grpc_port:
            from server.oip_grpc.front import GrpcFront

            grpc_front = GrpcFront(app.state, VERSION)
            try:
                await grpc_front.start(settings.host, settings.grpc_port)
            except Exception as e:
                app.state.startup_error = str(e)
                log.error("%s", e)
                await _stop_batchers(service, settings.drain_timeout_s)
                service.close()
                raise
        app.state.grpc_front = grpc_front
        log.info("ready: %s", ", ".join(service.models))
        try:
            yield
        finally:
            service.accepting = False
            for lm in service.models.values():
                lm.ready = False
                metrics.model_ready.labels(lm.name).set(0)
            if grpc_front is not None:  # its calls in progress finish first (new ones: UNAVAILABLE)
                await grpc_front.stop(settings.drain_timeout_s)
            await _stop_batchers(service, settings.drain_timeout_s)
            service.close()
            log.info("stopped")

    app = InferloadApp(
        title="inferload model server",
        version=VERSION,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.service = None
    app.state.startup_error = None
    app.state.loop = None
    app.state.grpc_front = None
    app.state.infer_endpoint = InferEndpoint(app)
    app.state.fast_path_state = "unavailable"  # until uvicorn_config chooses the protocol
    install(app)
    return app


def begin_drain(app: FastAPI) -> None:
    """Readiness → 503 and new inference → 503. Safe to call from a signal handler (plain attribute writes)."""
    service: InferenceService | None = app.state.service
    if service is not None:
        service.accepting = False
        loop = app.state.loop
        if loop is not None:

            def _gauges() -> None:
                for lm in service.models.values():
                    app.state.metrics.model_ready.labels(lm.name).set(0)

            try:
                loop.call_soon_threadsafe(_gauges)
            except RuntimeError:
                pass


def serve(settings: ServerSettings) -> int:
    """Run the server until SIGTERM/SIGINT. Returns the process exit code (0 after a graceful drain)."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if settings.malloc_tuning:
        from server.malloc import tune_malloc

        tune_malloc()
    try:
        # fail fast with the reason only (no traceback) on a bad repository or a provider this ORT lacks
        check_providers_installed(load_configs(settings).values())
    except (ConfigError, ProviderError) as e:
        print(f"inferload server failed to start: {e}", file=sys.stderr)
        return 1
    app = create_app(settings)
    config = uvicorn_config(settings, app)
    server = DrainingServer(config, app, settings.shutdown_delay_s)
    try:
        server.run()
    except SystemExit:  # uvicorn exits 3 when startup fails; report the reason and exit 1 instead
        pass
    if not server.started:
        print(f"inferload server failed to start: {app.state.startup_error or 'see the log above'}", file=sys.stderr)
        return 1
    return 0


def uvicorn_config(settings: ServerSettings, app: FastAPI) -> uvicorn.Config:
    """The uvicorn configuration `serve` runs `app` with (tests run the same one in-process). The HTTP protocol is
    chosen by the start-up self-check (server/selfcheck.py): the fast path's httptools protocol if this uvicorn and
    httptools pass it and `fast_path` is "auto", else the best layer that passes, with one warning line."""
    from server.selfcheck import choose_front

    front = choose_front(settings.max_header_bytes, settings.fast_path, app)
    app.state.fast_path_state = front.fast_path
    app.state.http_front = front
    app.state.metrics.set_fast_path_state(front.fast_path)
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        access_log=False,
        log_level=settings.log_level,
        lifespan="on",
        timeout_graceful_shutdown=settings.drain_timeout_s,
        limit_concurrency=settings.max_connections,
        server_header=False,
        loop="auto",  # uvloop if installed
        http=front.http,
        h11_max_incomplete_event_size=4 * settings.max_header_bytes,  # h11 (no httptools): its 400 past 4x the limit
    )


class DrainingServer(uvicorn.Server):
    """uvicorn.Server whose first SIGTERM/SIGINT flips readiness first, then (after `delay_s`) shuts down
    gracefully, and which does not re-raise the signal afterwards, so a graceful drain exits 0. A second
    signal during the drain forces the exit."""

    def __init__(self, config, app: FastAPI, delay_s: float = 0.0) -> None:
        super().__init__(config)
        self._app = app
        self._delay_s = delay_s
        self._draining = False

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._draining:
            if self.should_exit:
                self.force_exit = True
            self.should_exit = True
            return
        self._draining = True
        begin_drain(self._app)
        if self._delay_s > 0:
            timer = threading.Timer(self._delay_s, self._exit_now)
            timer.daemon = True
            timer.start()
        else:
            self.should_exit = True

    def _exit_now(self) -> None:
        self.should_exit = True
