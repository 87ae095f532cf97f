"""The target: where the server is and how to reach it, for every transport and every call (metadata, infer,
metrics). Request options belong here, not to a transport (DESIGN.md §1):

- the base URL, whose path prefix is kept for every call (`https://gw.example/serving/resnet` → every request
  path starts with `/serving/resnet`);
- extra headers ("Name: value"; a `Host` header overrides the one derived from the URL, as an ingress needs);
- a bearer token from a file (`bearer_token_file`) or the environment (INFERLOAD_BEARER_TOKEN);
- TLS: a CA bundle, a client certificate and key, or `insecure` (no verification);
- an OIP model version.

Secrets never leave this module in clear: `redact_headers` / `redact_url` give what reports, logs and result
documents show. `preflight` turns the first answers of a server into messages a user understands (401/403,
TLS failures, unreachable) before any load is sent.

No gevent or locust here: the metadata calls run in the plain CLI process (urllib); the load engine builds its
own client from `client_options()`.
"""

from __future__ import annotations

import json
import os
import re
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote, urlsplit

TOKEN_ENV = "INFERLOAD_BEARER_TOKEN"
REDACTED = "<redacted>"
_SENSITIVE = re.compile(r"authorization|cookie|token|secret|passw|api[-_]?key|^x-.*key$|credential|signature", re.I)
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_HOP_BY_HOP = {"content-length", "transfer-encoding", "connection"}


class TargetError(ValueError):
    """A target option that cannot work, or a server that refused us before any load; the message says the fix."""


def parse_headers(items: list[str] | tuple[str, ...]) -> list[tuple[str, str]]:
    """'Name: value' strings → (name, value) pairs, validated (no CR/LF, a token for a name)."""
    out = []
    for item in items:
        name, sep, value = item.partition(":")
        name, value = name.strip(), value.strip()
        if not sep or not name:
            raise TargetError(f"header {_show(item)!r}: expected 'Name: value'")
        if not _HEADER_NAME.match(name):
            raise TargetError(f"header name {name!r} is not a valid HTTP field name")
        if "\r" in value or "\n" in value:
            raise TargetError(f"header {name}: the value must not contain a line break")
        if name.lower() in _HOP_BY_HOP:
            raise TargetError(f"header {name} is set by the load generator itself; drop it")
        out.append((name, value))
    return out


def is_sensitive(name: str) -> bool:
    return bool(_SENSITIVE.search(name))


def _show(item: str) -> str:
    name, sep, _ = item.partition(":")
    return f"{name}: {REDACTED}" if sep and is_sensitive(name) else item


def redact_headers(items: list[str] | tuple[str, ...]) -> list[str]:
    """The headers as a report may show them: credential values replaced by <redacted>."""
    out = []
    for item in items:
        name, sep, value = item.partition(":")
        out.append(f"{name.strip()}: {REDACTED}" if sep and is_sensitive(name) else item)
    return out


def redact_url(url: str) -> str:
    """A URL without its password (user:pass@host → user:<redacted>@host)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return url.replace(parts.netloc, f"{parts.username}:{REDACTED}@{netloc[-1]}", 1)


@dataclass(frozen=True)
class Target:
    url: str
    headers: tuple[tuple[str, str], ...] = ()
    token: str | None = field(default=None, repr=False)
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    insecure: bool = False
    model_version: str | None = None

    # ---- derived ---------------------------------------------------------------------------------------------
    @property
    def scheme(self) -> str:
        return urlsplit(self.url).scheme

    @property
    def https(self) -> bool:
        """TLS: https:// (REST) or grpcs:// (gRPC)."""
        return self.scheme in ("https", "grpcs")

    @property
    def grpc_address(self) -> str:
        """HOST:PORT of a gRPC target (grpc:// defaults to Triton's port 8001, grpcs:// to 443)."""
        p = urlsplit(self.url)
        host = p.hostname or "127.0.0.1"
        port = p.port or (443 if self.https else 8001)
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    @property
    def host(self) -> str:
        return urlsplit(self.url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.url).port or (443 if self.https else 80)

    @property
    def prefix(self) -> str:
        """The URL's path without its trailing slash ('' for a bare host)."""
        return urlsplit(self.url).path.rstrip("/")

    @property
    def origin(self) -> str:
        p = urlsplit(self.url)
        return f"{p.scheme}://{p.netloc.rsplit('@', 1)[-1]}"

    def path(self, suffix: str) -> str:
        """A request path: the prefix, then `suffix` (which starts with '/')."""
        return self.prefix + suffix

    def model_path(self, model: str, suffix: str = "") -> str:
        """OIP: {prefix}/v2/models/{model}[/versions/{v}]{suffix}."""
        p = f"{self.prefix}/v2/models/{quote(model, safe='')}"
        if self.model_version:
            p += f"/versions/{quote(self.model_version, safe='')}"
        return p + suffix

    def request_headers(self) -> dict[str, str]:
        """Headers every request carries (the user's, then the bearer token unless an Authorization was given)."""
        out: dict[str, str] = {}
        for name, value in self.headers:
            out[name] = value
        if self.token and not any(k.lower() == "authorization" for k in out):
            out["Authorization"] = f"Bearer {self.token}"
        return out

    def host_override(self) -> str | None:
        for name, value in self.headers:
            if name.lower() == "host":
                return value
        return None

    def ssl_context(self, factory: Any = None) -> ssl.SSLContext | None:
        """The TLS context of an https target (`factory`: ssl.create_default_context or gevent's)."""
        if not self.https:
            return None
        factory = factory or ssl.create_default_context
        try:
            ctx = factory(cafile=self.ca_file) if self.ca_file else factory()
            if self.insecure:
                ctx.check_hostname = False
                ctx.verify_mode = ssl.CERT_NONE
            if self.client_cert:
                ctx.load_cert_chain(self.client_cert, self.client_key)
        except (OSError, ssl.SSLError) as e:
            raise TargetError(f"TLS setup failed ({_tls_files(self)}): {e}") from None
        return ctx

    def describe(self) -> dict[str, Any]:
        """What a result document records about the target: no secrets."""
        return {
            "url": redact_url(self.url),
            "prefix": self.prefix,
            "headers": redact_headers([f"{n}: {v}" for n, v in self.headers]),
            "bearer_token": self.token is not None,
            "tls": None
            if not self.https
            else {
                "ca_file": self.ca_file,
                "client_cert": self.client_cert,
                "verify": not self.insecure,
            },
            "model_version": self.model_version,
        }

    # ---- plain calls (CLI process) ----------------------------------------------------------------------------
    def get_json(self, path: str, timeout_s: float = 10.0) -> Any:
        """GET origin+path as JSON, with the target's headers and TLS; raises TargetError with a message a user
        understands (credentials refused, TLS failure, unreachable) or urllib's HTTPError for other statuses."""
        req = urllib.request.Request(
            self.origin + path, headers={"Accept": "application/json", **self.request_headers()}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout_s, context=self.ssl_context()) as r:
                return json.loads(r.read())
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                raise TargetError(
                    f"the server refused the credentials (HTTP {e.code} from {redact_url(self.origin)}{path}; "
                    "see --header / --bearer-token-file)"
                ) from None
            raise
        except urllib.error.URLError as e:
            raise TargetError(self._explain(e.reason, path)) from None
        except (ssl.SSLError, ConnectionError, TimeoutError, OSError) as e:
            raise TargetError(self._explain(e, path)) from None

    def _explain(self, reason: Any, path: str) -> str:
        where = f"{redact_url(self.origin)}{path}"
        if isinstance(reason, ssl.SSLCertVerificationError):
            return (
                f"TLS: the server's certificate did not verify ({reason.verify_message or reason}) at {where}; "
                f"give its CA with --ca-file, or --insecure to skip verification"
            )
        if isinstance(reason, ssl.SSLError):
            return f"TLS handshake with {where} failed ({reason}); {_tls_files(self)}"
        if isinstance(reason, ConnectionRefusedError):
            return f"cannot reach the server at {where}: connection refused"
        if isinstance(reason, (TimeoutError, OSError)) and "timed out" in str(reason):
            return f"cannot reach the server at {where}: timed out"
        return f"cannot reach the server at {where}: {reason}"


def _tls_files(t: Target) -> str:
    got = [f"{k}={v}" for k, v in (("ca_file", t.ca_file), ("client_cert", t.client_cert)) if v]
    return ", ".join(got) or "system CA store, no client certificate"


def read_token(path: str | None, environ: dict[str, str] | None = None) -> str | None:
    """The bearer token: from `path` (first line, stripped) or INFERLOAD_BEARER_TOKEN; None if neither."""
    env = os.environ if environ is None else environ
    if path:
        try:
            text = open(path, encoding="utf-8").read().strip()
        except OSError as e:
            raise TargetError(f"--bearer-token-file {path}: {e.strerror or e}") from None
        if not text or "\n" in text:
            raise TargetError(f"--bearer-token-file {path}: expected one line holding the token")
        return text
    tok = env.get(TOKEN_ENV, "").strip()
    return tok or None


def target_of(scenario: Any, environ: dict[str, str] | None = None) -> Target:
    """The Target of a Scenario (or of a plain URL string, with no options)."""
    if isinstance(scenario, str):
        return Target(url=scenario)
    return Target(
        url=scenario.target,
        headers=tuple(parse_headers(scenario.headers)),
        token=read_token(scenario.bearer_token_file, environ),
        ca_file=scenario.ca_file,
        client_cert=scenario.client_cert,
        client_key=scenario.client_key,
        insecure=scenario.insecure,
        model_version=scenario.model_version,
    )
