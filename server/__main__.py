"""`python -m server`: the model server (the server image's entry point). Same options as `inferload serve`.

Every option can also come from the environment (INFERLOAD_<NAME>, see server/settings.py); flags win.
The bearer token is taken from INFERLOAD_AUTH_TOKEN only (a flag would show in `ps`).
Exit codes: 0 after a graceful shutdown (SIGTERM/SIGINT), 1 when startup fails (e.g. a bad config.toml), 2 bad flags.
"""

from __future__ import annotations

import argparse
import sys

from pydantic import ValidationError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m server", description="inferload OIP v2 model server (ONNX Runtime).")
    p.add_argument("--models", dest="models_dir", help="model repository directory (default: models)")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="TCP port (default 8000)")
    p.add_argument("--grpc-port", type=int, help="OIP gRPC port (default 8001; 0: no gRPC)")
    p.add_argument("--model", dest="model_names", action="append", help="serve only this model (repeatable)")
    p.add_argument(
        "--override",
        action="append",
        default=[],
        metavar="[MODEL:]KEY=VALUE",
        help="config override, e.g. batching.max_queue_delay_ms=2 or resnet50:instances.count=2 (repeatable)",
    )
    p.add_argument("--max-body-bytes", type=int, help="largest request body (default 64 MiB)")
    p.add_argument(
        "--max-header-bytes",
        type=int,
        help="largest request head: request line + header fields (default 16 KiB); larger gets 431",
    )
    p.add_argument(
        "--max-connections", type=int, help="open connections at once (default 1024); beyond it: 503 at once"
    )
    p.add_argument("--log-level", choices=["critical", "error", "warning", "info", "debug"])
    p.add_argument(
        "--drain-timeout", dest="drain_timeout_s", type=float, help="SIGTERM: wait this long for in-flight requests"
    )
    p.add_argument(
        "--shutdown-delay",
        dest="shutdown_delay_s",
        type=float,
        help="SIGTERM: answer readiness 503 this long before closing the listener",
    )
    p.add_argument("--no-warmup", dest="warmup", action="store_const", const=False, help="skip the warm-up inference")
    p.add_argument("--preprocess-threads", type=int, help="image decoding threads (default: usable CPUs)")
    p.add_argument(
        "--fast-path",
        choices=["auto", "off"],
        help="auto (default): serve plain infer requests in the HTTP protocol when uvicorn/httptools pass the "
        "start-up self-check; off: every request takes the ASGI path",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    from server.app import serve
    from server.settings import settings_from_options

    args = vars(parser().parse_args(argv))
    try:
        settings = settings_from_options(**args)
    except (ValidationError, ValueError) as e:
        print(f"invalid server settings: {e}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
