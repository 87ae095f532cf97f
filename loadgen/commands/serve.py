"""`inferload serve`: run the OIP v2 model server in this process (same options as `python -m server`).

Imports only server code, never locust (gevent's monkey-patching must not reach the server).
"""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("serve")
    def serve(
        models: Path | None = typer.Option(
            None, "--models", help="Model repository directory (default: models, or INFERLOAD_MODELS_DIR)."
        ),
        host: str | None = typer.Option(
            None, "--host", help="Bind address (default 127.0.0.1; containers use 0.0.0.0)."
        ),
        port: int | None = typer.Option(None, "--port", help="TCP port (default 8000)."),
        grpc_port: int | None = typer.Option(
            None, "--grpc-port", help="OIP gRPC port, as Triton's (default 8001; 0: no gRPC)."
        ),
        model: list[str] | None = typer.Option(None, "--model", help="Serve only this model (repeatable)."),
        override: list[str] | None = typer.Option(
            None,
            "--override",
            metavar="[MODEL:]KEY=VALUE",
            help="Config override, e.g. batching.max_queue_delay_ms=2 or resnet50:instances.count=2 (repeatable).",
        ),
        max_body_bytes: int | None = typer.Option(
            None, "--max-body-bytes", help="Largest request body (default 64 MiB)."
        ),
        log_level: str | None = typer.Option(None, "--log-level", help="critical|error|warning|info|debug."),
        drain_timeout: float | None = typer.Option(
            None, "--drain-timeout", help="SIGTERM: wait this long (s) for in-flight requests."
        ),
        shutdown_delay: float | None = typer.Option(
            None, "--shutdown-delay", help="SIGTERM: answer readiness 503 this long (s) before closing the listener."
        ),
        warmup: bool | None = typer.Option(
            None, "--warmup/--no-warmup", help="Warm-up inference before ready (default on)."
        ),
        preprocess_threads: int | None = typer.Option(
            None, "--preprocess-threads", help="Image decoding threads (default: usable CPUs)."
        ),
        fast_path: str | None = typer.Option(
            None,
            "--fast-path",
            help="auto (default): plain infer requests are served by the HTTP protocol itself when uvicorn/httptools "
            "pass the start-up self-check; off: every request takes the ASGI path (or INFERLOAD_FAST_PATH).",
        ),
    ) -> None:
        """Serve the model repository over OIP v2 REST (Ctrl-C / SIGTERM drains in-flight requests and exits 0).

        The bearer token for inference is read from INFERLOAD_AUTH_TOKEN only."""
        from pydantic import ValidationError

        from server.app import serve as run_server
        from server.settings import settings_from_options

        try:
            settings = settings_from_options(
                override=override or None,
                models_dir=models,
                fast_path=fast_path,
                host=host,
                port=port,
                grpc_port=grpc_port,
                model_names=model or None,
                max_body_bytes=max_body_bytes,
                log_level=log_level,
                drain_timeout_s=drain_timeout,
                shutdown_delay_s=shutdown_delay,
                warmup=warmup,
                preprocess_threads=preprocess_threads,
            )
        except (ValidationError, ValueError) as e:
            typer.echo(f"invalid server settings: {e}", err=True)
            raise typer.Exit(2) from None
        code = run_server(settings)
        if code:
            raise typer.Exit(code)
