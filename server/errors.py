"""Error classes that carry their HTTP status. The transport turns them into `{"error": "..."}`.

The service and batcher layers raise these without knowing about HTTP; `routes.py` installs a single
exception handler that maps `InferError.status` and `InferError.headers` onto the response.
"""

from __future__ import annotations


class InferError(Exception):
    status: int = 500
    outcome: str = "error"  # label value for inferload_requests_total{outcome}

    def __init__(self, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.headers = dict(headers or {})


class BadRequest(InferError):
    status = 400
    outcome = "invalid"


class Unauthorized(InferError):
    status = 401
    outcome = "invalid"


class NotFound(InferError):
    status = 404
    outcome = "invalid"


class PayloadTooLarge(InferError):
    status = 413
    outcome = "invalid"


class UnsupportedMediaType(InferError):
    status = 415
    outcome = "invalid"


class QueueFull(InferError):
    """The model's queue is at max_queue_size: refuse at once, never block the caller."""

    status = 503
    outcome = "rejected"

    def __init__(self, message: str, retry_after_s: int = 1) -> None:
        super().__init__(message, {"Retry-After": str(max(1, int(retry_after_s)))})


class Unavailable(InferError):
    """Server not ready or shutting down."""

    status = 503
    outcome = "rejected"


class DeadlineExceeded(InferError):
    status = 504
    outcome = "timeout"


class ClientDisconnected(InferError):
    """The client went away while its request was queued; never sent to a client (nobody is listening)."""

    status = 499
    outcome = "cancelled"
