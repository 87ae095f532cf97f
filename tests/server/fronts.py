"""The HTTP fronts the server's conformance tests run against (server/selfcheck.py chooses one at start-up), and the
simulated uvicorn releases that make the self-check fail.

    auto    the fast path on (this uvicorn and httptools pass the self-check)
    off     the fast path off by the setting (INFERLOAD_FAST_PATH=off)
    broken  a uvicorn whose protocol reads one more attribute of its cycle: the fast path fails its self-check, the
            head-limited protocol with whole-body reading serves, every infer request takes the ASGI path
    plain   a uvicorn whose protocol callback changed its signature: the head limit fails its self-check, uvicorn's
            own httptools protocol serves (the 431 comes from the ASGI app once a head has arrived)

`apply(front, setattr)` installs a breakage: in this process through a pytest MonkeyPatch's `setattr`, in a server
subprocess through a `sitecustomize` (`sitecustomize_dir`). No pytest import here: the server subprocess imports it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

FRONTS = ("auto", "off", "broken", "plain")
# the fast path's state and the reason an infer request takes the path it takes, per front
STATE = {"auto": "on", "off": "off", "broken": "self_check_failed", "plain": "self_check_failed"}
SERVED = {
    "auto": ("fast", "admitted"),
    "off": ("asgi", "fast_path_off"),
    "broken": ("asgi", "self_check_failed"),
    "plain": ("asgi", "self_check_failed"),
}
FAILED_LAYER = {"broken": "fast_path", "plain": "head_limit"}


def apply(front: str, setattr: Callable[[Any, str, Any], None] = setattr) -> None:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    if front == "broken":
        original = HttpToolsProtocol.on_response_complete

        def on_response_complete(self: Any) -> None:
            self.cycle.scope  # noqa: B018 - a uvicorn that reads one more attribute of its current cycle
            original(self)

        setattr(HttpToolsProtocol, "on_response_complete", on_response_complete)
    elif front == "plain":
        original_complete = HttpToolsProtocol.on_message_complete

        def on_message_complete(self: Any, *args: Any) -> None:  # a callback whose signature changed
            original_complete(self)

        setattr(HttpToolsProtocol, "on_message_complete", on_message_complete)


def server_args(front: str, tmp: Path) -> tuple[list[str], dict[str, str]]:
    """Extra `python -m server` flags and environment for `front`."""
    if front == "off":
        return [], {"INFERLOAD_FAST_PATH": "off"}
    if front in FAILED_LAYER:
        site = tmp / f"site-{front}"
        site.mkdir(parents=True, exist_ok=True)
        (site / "sitecustomize.py").write_text(f"from tests.server.fronts import apply\napply({front!r})\n")
        return [], {"PYTHONPATH": str(site)}
    return [], {}
