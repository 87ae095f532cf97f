"""Reading a server's Prometheus metrics over HTTP: plain urllib, a short timeout, errors returned as text.

Where: the URL given (`--server-metrics`: Triton serves its metrics on another port, http://HOST:8002/metrics;
MLServer on http://HOST:8082/metrics) or, by default, the target's base URL + /metrics (inferload's own server).
How: with the headers and TLS context the caller passes (the target's). `source_for(scenario)` builds both from the
scenario's target, and sends the target's headers only to the target's own host: a metrics URL on another host gets
none, so a bearer token is never handed to a third party.

`scrape` never raises: a failed scrape is a `Scrape` with `error` set, so a load run never fails on its metrics.
`make_fetch` gives the raising form (`fetch(url) -> text`) that loadgen.search.overload's watcher counts failures of.
All imports are at module level: a watcher thread must not import while another thread imports locust.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from loadgen.engine.target import TargetError, redact_url, target_of
from loadgen.results.promtext import parse
from loadgen.results.server_metrics import server_metrics_section

TIMEOUT_S = 2.0
MAX_BYTES = 32 * 1024 * 1024
"""A metrics page larger than this is cut (a server with thousands of models); the figures of one model are read from
what arrived."""

Fetch = Callable[[str], str]


class ScrapeError(RuntimeError):
    """A scrape that failed; the message says why in words a user can act on (no credentials in it)."""


@dataclass(frozen=True)
class Scrape:
    url: str
    text: str | None
    error: str | None = None
    t_s: float = 0.0
    """time.monotonic() when the answer arrived (or the attempt failed)."""
    elapsed_ms: float = 0.0

    @property
    def ok(self) -> bool:
        return self.text is not None


def default_metrics_url(target: str) -> str:
    """inferload's own server: the target's base URL (its path prefix kept) + /metrics."""
    return target.rstrip("/") + "/metrics"


def fetch_text(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout_s: float = TIMEOUT_S,
) -> str:
    """GET the metrics page as text; ScrapeError with a readable reason on any failure."""
    where = redact_url(url)
    req = urllib.request.Request(url, headers={"Accept": "text/plain;version=0.0.4", **(headers or {})})
    try:
        with urllib.request.urlopen(req, timeout=timeout_s, context=ssl_context) as r:
            body: bytes = r.read(MAX_BYTES)
    except urllib.error.HTTPError as e:
        hint = " (credentials refused: see --header / --bearer-token-file)" if e.code in (401, 403) else ""
        if e.code == 404:
            hint = " (no metrics there: Triton serves them on port 8002, MLServer on 8082; see --server-metrics)"
        raise ScrapeError(f"HTTP {e.code} from {where}{hint}") from None
    except urllib.error.URLError as e:
        raise ScrapeError(f"cannot read {where}: {_reason(e.reason, timeout_s)}") from None
    except (OSError, ValueError) as e:  # timeouts, resets, TLS errors (ssl.SSLError is an OSError), bad URLs
        raise ScrapeError(f"cannot read {where}: {_reason(e, timeout_s)}") from None
    return body.decode("utf-8", "replace")


def _reason(reason: Any, timeout_s: float) -> str:
    if isinstance(reason, TimeoutError) or "timed out" in str(reason):
        return f"timed out after {timeout_s:g} s"
    if isinstance(reason, ssl.SSLCertVerificationError):
        return f"TLS certificate did not verify ({reason.verify_message or reason}; see --ca-file / --insecure)"
    if isinstance(reason, ConnectionRefusedError):
        return "connection refused"
    return str(reason) or type(reason).__name__


def scrape(
    url: str,
    *,
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout_s: float = TIMEOUT_S,
    fetch: Fetch | None = None,
    clock: Callable[[], float] = time.monotonic,
) -> Scrape:
    """One scrape that never raises (an injected `fetch(url) -> text` replaces the HTTP call in tests). An answer that
    holds no Prometheus sample at all is an error too: the URL is probably not a metrics page."""
    t0 = clock()
    try:
        text = (
            fetch(url)
            if fetch is not None
            else fetch_text(url, headers=headers, ssl_context=ssl_context, timeout_s=timeout_s)
        )
    except Exception as e:  # never into the load run
        t1 = clock()
        msg = str(e) if isinstance(e, ScrapeError) else f"cannot read {redact_url(url)}: {type(e).__name__}: {e}"
        return Scrape(redact_url(url), None, msg, t1, (t1 - t0) * 1000.0)
    t1 = clock()
    snap = parse(text)
    if not snap.by_name and not snap.types:
        return Scrape(
            redact_url(url),
            None,
            f"{redact_url(url)} answered without any Prometheus sample (is it the metrics URL? see --server-metrics)",
            t1,
            (t1 - t0) * 1000.0,
        )
    return Scrape(redact_url(url), text, None, t1, (t1 - t0) * 1000.0)


def make_fetch(
    headers: Mapping[str, str] | None = None,
    ssl_context: ssl.SSLContext | None = None,
    timeout_s: float = TIMEOUT_S,
) -> Fetch:
    """`fetch(url) -> text` with these headers and TLS context; raises ScrapeError."""
    hdrs = dict(headers or {})

    def fetch(url: str) -> str:
        return fetch_text(url, headers=hdrs, ssl_context=ssl_context, timeout_s=timeout_s)

    return fetch


@dataclass(frozen=True)
class MetricsSource:
    """Where a run reads the server's metrics and how (the target's headers and TLS where they belong)."""

    url: str
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    ssl_context: ssl.SSLContext | None = None
    note: str | None = None
    """Why the target's credentials were not used (another host, or the target's options failed)."""
    fetcher: Fetch | None = field(default=None, repr=False)
    """Replaces the HTTP call (tests)."""

    def fetch(self, timeout_s: float = TIMEOUT_S) -> Fetch:
        return self.fetcher or make_fetch(self.headers, self.ssl_context, timeout_s)

    def scrape(self, timeout_s: float = TIMEOUT_S) -> Scrape:
        return scrape(
            self.url, headers=self.headers, ssl_context=self.ssl_context, timeout_s=timeout_s, fetch=self.fetcher
        )


def source_for(scenario: Any, url: str | None = None) -> MetricsSource:
    """The metrics URL of a scenario (`url`, else `scenario.server_metrics`, else target + /metrics) with the target's
    headers and TLS context when the URL is on the target's host."""
    target_url = str(scenario.target)
    url = url or getattr(scenario, "server_metrics", None) or default_metrics_url(target_url)
    try:
        t = target_of(scenario)
    except (TargetError, OSError) as e:
        return MetricsSource(url, note=f"target options not applied to the metrics scrape: {e}")
    m, tg = urlsplit(url), urlsplit(target_url)
    same_host = (m.hostname or "").lower() == (tg.hostname or "").lower()
    headers: dict[str, str] = {}
    note = None
    if same_host:
        same_origin = (m.scheme, m.port) == (tg.scheme, tg.port)
        headers = {k: v for k, v in t.request_headers().items() if same_origin or k.lower() != "host"}
    elif t.request_headers():
        note = "the target's headers are not sent to a metrics URL on another host"
    ctx = None
    if m.scheme == "https":
        try:
            ctx = t.ssl_context() if same_host and t.https else ssl.create_default_context()
        except TargetError as e:
            return MetricsSource(url, headers, None, f"TLS options not applied to the metrics scrape: {e}")
    return MetricsSource(url, headers, ctx, note)


class WindowScrape:
    """The server's metrics around a measurement window, for the run result: `start()` when the window opens (the
    warm-up ends), `end()` when it closes (measurement and drain done), then `section(model)` is the result's
    `server_metrics` block (loadgen.results.server_metrics.server_metrics_section). Never raises; a failed scrape is
    said in the block. Under gevent, build it after locust is imported (its TLS context then uses gevent's ssl)."""

    def __init__(self, source: MetricsSource, family: str | None = None, timeout_s: float = TIMEOUT_S) -> None:
        self.source, self.family, self.timeout_s = source, family, timeout_s
        self.before: Scrape | None = None
        self.after: Scrape | None = None

    @classmethod
    def for_scenario(cls, scenario: Any, family: str | None = None) -> WindowScrape:
        return cls(source_for(scenario), family)

    @property
    def started(self) -> bool:
        return self.before is not None

    def start(self) -> None:
        self.before = self.source.scrape(self.timeout_s)

    def end(self) -> None:
        self.after = self.source.scrape(self.timeout_s)

    def section(self, model: str) -> dict[str, Any]:
        b, a = self.before, self.after
        errors = [s.error for s in (b, a) if s is not None and s.error]
        if b is None or a is None:
            errors.append("the measurement window was not reached" if b is None else "no scrape after the window")
        window_s = a.t_s - b.t_s if a is not None and b is not None else None
        sec = server_metrics_section(
            b.text if b is not None else None,
            a.text if a is not None else None,
            model,
            self.source.url,
            self.family,
            window_s=window_s,
            error="; ".join(dict.fromkeys(errors)) or None,
        )
        if self.source.note:
            sec["note"] = self.source.note
        return sec
