"""Who may read the serving surfaces (the API, the dashboard pages, ``/docs``, ``/openapi.json``, the static
files): API keys stored only as sha256 hashes, two roles, and the ASGI middleware that checks them, writes the
access log and answers HEAD.

Keys. ``ALPHA_API_KEYS`` (entries separated by commas or newlines) and ``ALPHA_API_KEYS_FILE`` (one entry a line,
``#`` comments) hold ``name:role:sha256hex`` entries; ``alpha api-key --name pm1 --role reader`` mints a key and
prints its line. ``ALPHA_API_TOKEN`` still works: one ``operator`` key named ``token`` (its hash is kept, not the
token). No key configured at all: the surfaces are open (the CLI warns when that is not loopback only).

Roles. ``reader`` (portfolio managers): every page and read route. ``operator``: also the pipeline's run-status
detail, ``/api/pipeline`` and the ``/pipeline`` page, and ``/metrics`` (``OPERATOR_PATHS``).

Credentials, any of: ``Authorization: Bearer <key>``; HTTP basic auth with the key as the password (any user
name: ``curl -u pm1:KEY``); the ``alpha_key`` cookie, set HttpOnly by opening any page once with ``?key=<key>``
(what the sign-in form a refused page shows sends; answered with a redirect to the same page without the key,
so it leaves the address bar). Pages are not challenged with Basic (a browser's own prompt would hide the form). ``/api/health`` (liveness) is always open.

Answers: 401 ``no credentials`` when none were sent, 401 ``invalid credentials`` when the key is not one of the
server's keys, 403 when a valid key's role is not enough. Browsers (pages outside ``/api``) get the same status
with a small sign-in page; API clients get JSON ``{"detail": ...}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import sys
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from pathlib import Path
from urllib.parse import parse_qsl, urlencode

ROLES = ("reader", "operator")
OPEN_PATHS = frozenset({"/api/health"})  # liveness: no credentials
# the pipeline's run-status detail, and the Prometheus metrics (the pipeline's state; a scraper's key is an operator's)
OPERATOR_PATHS = frozenset({"/api/pipeline", "/pipeline", "/metrics"})
COOKIE = "alpha_key"
COOKIE_MAX_AGE = 12 * 3600  # a working day: a PM opens ?key= once a morning
KEY_PREFIX = "ak_"
_NAME = re.compile(r"^[A-Za-z0-9_.@-]{1,64}$")
_HEX = re.compile(r"^[0-9a-f]{64}$")


class KeysError(ValueError):
    """A keys entry that cannot be read (one line naming where)."""


@dataclass(frozen=True)
class ApiKey:
    name: str
    role: str  # "reader" or "operator"
    sha256: str

    def may(self, role: str) -> bool:
        return self.role == "operator" or role == "reader"


def key_hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def mint_key() -> str:
    """A new random API key (256 bits)."""
    return KEY_PREFIX + secrets.token_urlsafe(32)


def key_line(name: str, role: str, secret: str) -> str:
    """The ``name:role:sha256hex`` entry of ``secret`` for ALPHA_API_KEYS / ALPHA_API_KEYS_FILE."""
    _check_name_role(name, role, "api-key")
    return f"{name}:{role}:{key_hash(secret)}"


def _check_name_role(name: str, role: str, where: str) -> None:
    if not _NAME.match(name):
        raise KeysError(f"{where}: key name {name!r} must be 1-64 letters, digits or _.@- (no ':' or spaces)")
    if role not in ROLES:
        raise KeysError(f"{where}: role {role!r} is not one of {', '.join(ROLES)}")


class KeyRing:
    """The server's keys by hash. Empty: authentication is off."""

    def __init__(self, keys: list[ApiKey] | None = None, sources: list[str] | None = None):
        self._by_hash: dict[str, ApiKey] = {}
        for k in keys or []:
            if k.sha256 in self._by_hash:
                raise KeysError(
                    f"key {k.name!r}: the same key as {self._by_hash[k.sha256].name!r} (mint one each)"
                )
            self._by_hash[k.sha256] = k
        self.sources = sources or []

    @property
    def enabled(self) -> bool:
        return bool(self._by_hash)

    def entries(self) -> list[ApiKey]:
        return list(self._by_hash.values())

    def authenticate(self, secret: str) -> ApiKey | None:
        # A dict lookup by the hash: what leaks through timing is about the hash, which does not reveal the key.
        return self._by_hash.get(key_hash(secret)) if secret else None

    def describe(self) -> str:
        """One line for the start-up banner: how many keys of each role, from where (never a key or a hash)."""
        if not self.enabled:
            return "off (no ALPHA_API_KEYS, ALPHA_API_KEYS_FILE or ALPHA_API_TOKEN)"
        counts = {r: sum(k.role == r for k in self._by_hash.values()) for r in ROLES}
        roles = ", ".join(f"{n} {r}" for r, n in counts.items())
        return f"ON: {len(self._by_hash)} key(s) ({roles}) from {', '.join(self.sources)}"

    @classmethod
    def parse(cls, text: str, where: str) -> list[ApiKey]:
        keys = []
        for n, raw in enumerate(re.split(r"[\n,]", text), 1):
            entry = raw.split("#", 1)[0].strip()
            if not entry:
                continue
            spot = f"{where} entry {n}" if where.startswith("ALPHA_API_KEYS=") else f"{where}:{n}"
            parts = entry.split(":")
            if len(parts) != 3:
                raise KeysError(f"{spot}: expected name:role:sha256hex (mint one with `alpha api-key`)")
            name, role, digest = (p.strip() for p in parts)
            _check_name_role(name, role, spot)
            if not _HEX.match(digest.lower()):
                raise KeysError(f"{spot}: {name}'s hash must be 64 hex digits (a sha256, not the key itself)")
            keys.append(ApiKey(name, role, digest.lower()))
        return keys

    @classmethod
    def from_env(cls, token: str | None = None, environ: dict | None = None) -> KeyRing:
        """Keys from ALPHA_API_KEYS, ALPHA_API_KEYS_FILE and ``token`` (default ALPHA_API_TOKEN; "" for none)."""
        env = os.environ if environ is None else environ
        keys, sources = [], []
        inline = env.get("ALPHA_API_KEYS", "").strip()
        if inline:
            keys += cls.parse(inline, "ALPHA_API_KEYS=")
            sources.append("ALPHA_API_KEYS")
        path = env.get("ALPHA_API_KEYS_FILE", "").strip()
        if path:
            try:
                text = Path(path).read_text()
            except OSError as e:
                raise KeysError(f"ALPHA_API_KEYS_FILE={path}: cannot read it ({e.strerror or e})") from None
            keys += cls.parse(text, path)
            sources.append(f"ALPHA_API_KEYS_FILE={path}")
        if token is None:
            token = env.get("ALPHA_API_TOKEN", "")
        if token:
            keys.append(ApiKey("token", "operator", key_hash(token)))
            sources.append("ALPHA_API_TOKEN")
        return cls(keys, sources)


# --------------------------------------------------------------------------------------------- middleware
def _header(scope, name: bytes) -> str:
    for k, v in scope.get("headers") or ():
        if k == name:
            return v.decode("latin-1")
    return ""


def _cookie(scope, name: str) -> str:
    for part in _header(scope, b"cookie").split(";"):
        k, _, v = part.strip().partition("=")
        if k == name:
            return v
    return ""


def _is_browser_path(path: str) -> bool:
    return not path.startswith("/api/") and path != "/openapi.json"


class Authenticate:
    """Checks every HTTP request's credentials against ``keys`` (all paths but ``OPEN_PATHS``); records the key
    as ``scope["alpha.key"]`` for the access log. A no-op when ``keys`` is empty."""

    def __init__(self, app, keys: KeyRing):
        self.app, self.keys = app, keys

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.keys.enabled or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        query = scope.get("query_string", b"").decode("latin-1")
        pairs = parse_qsl(query, keep_blank_values=True)
        from_query = [v for k, v in pairs if k == "key"]
        if from_query:  # a browser's first visit: remember the key in a cookie, and drop it from the address
            key = self.keys.authenticate(from_query[-1])
            if key is None:
                await self._refuse(
                    scope,
                    send,
                    401,
                    "invalid credentials: that key is not one of this server's "
                    "keys (ALPHA_API_KEYS, ALPHA_API_KEYS_FILE or ALPHA_API_TOKEN)",
                )
                return
            rest = urlencode([(k, v) for k, v in pairs if k != "key"])
            secure = "; Secure" if scope.get("scheme") == "https" else ""
            cookie = (
                f"{COOKIE}={from_query[-1]}; HttpOnly; SameSite=Lax; Path=/; Max-Age={COOKIE_MAX_AGE}{secure}"
            )
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [
                        (b"location", (path + (f"?{rest}" if rest else "")).encode()),
                        (b"set-cookie", cookie.encode()),
                        (b"content-length", b"0"),
                        (b"cache-control", b"no-store"),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            scope["alpha.key"] = key
            return
        secret, how = self._credential(scope)
        if secret is None:
            await self._refuse(
                scope,
                send,
                401,
                "no credentials: send Authorization: Bearer <API key> (a browser: "
                "open the page once with ?key=<API key>, or sign in with the key as the password)",
            )
            return
        key = self.keys.authenticate(secret)
        if key is None:
            await self._refuse(
                scope,
                send,
                401,
                f"invalid credentials: the {how} is not one of this server's keys "
                "(ALPHA_API_KEYS, ALPHA_API_KEYS_FILE or ALPHA_API_TOKEN)",
            )
            return
        scope["alpha.key"] = key
        if path in OPERATOR_PATHS and not key.may("operator"):
            await self._refuse(
                scope,
                send,
                403,
                f"forbidden: key {key.name!r} has role {key.role}; {path} needs role operator",
            )
            return
        await self.app(scope, receive, send)

    @staticmethod
    def _credential(scope) -> tuple[str | None, str]:
        auth = _header(scope, b"authorization")
        if auth:
            scheme, _, value = auth.partition(" ")
            scheme, value = scheme.lower(), value.strip()
            if scheme == "bearer":
                return value, "bearer token"
            if scheme == "basic":
                try:
                    _, _, password = base64.b64decode(value, validate=True).decode().partition(":")
                except (ValueError, UnicodeDecodeError):
                    return "", "basic credential"
                return password, "basic-auth password"
            return "", f"{scheme or 'Authorization'} credential"
        cookie = _cookie(scope, COOKIE)
        if cookie:
            return cookie, "key in the alpha_key cookie"
        return None, ""

    @staticmethod
    async def _refuse(scope, send, status: int, message: str) -> None:
        path = scope["path"]
        if _is_browser_path(path):
            body = _sign_in_page(status, message, path).encode()
            headers = [(b"content-type", b"text/html; charset=utf-8")]
            if status == 401:  # not Basic: a browser would put up its own prompt over the sign-in form
                headers.append((b"www-authenticate", b'Bearer realm="alpha-assets"'))
        else:
            body = json.dumps({"detail": message}).encode()
            headers = [(b"content-type", b"application/json")]
            if status == 401:
                headers.append((b"www-authenticate", b"Bearer"))
        headers += [(b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _sign_in_page(status: int, message: str, path: str) -> str:
    form = (
        ""
        if status == 403
        else f'<form method=get action="{escape(path)}"><label>API key <input name=key type=password '
        "autocomplete=current-password size=48 autofocus></label> <button>Sign in</button></form>"
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8><title>Sign in · alpha-assets</title>"
        '<link rel=icon href="data:,"><style>body{font-family:system-ui,sans-serif;margin:48px;color:#222}'
        ".msg{background:#fff3cd;border:1px solid #ffe69c;padding:16px;border-radius:6px;margin:16px 0}"
        f'</style></head><body><h1>alpha-assets</h1><p class="msg" id="refused">{escape(message, quote=False)}</p>'
        f"{form}"
        "</body></html>"
    )


class HeadAsGet:
    """HEAD on any GET route: served as the GET, without the body (FastAPI's routes answer only their methods).
    The routes get a copy of the scope saying GET: the server's own still says HEAD (uvicorn reads it to expect
    no body after a Content-Length)."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "HEAD":
            await self.app(scope, receive, send)
            return
        scope = {**scope, "method": "GET"}

        async def no_body(message):
            if message["type"] == "http.response.body":
                if message.get("more_body"):
                    return
                message = {"type": "http.response.body", "body": b""}
            await send(message)

        await self.app(scope, receive, no_body)


class AccessLog:
    """One JSON line per HTTP request: time (ISO 8601, UTC offset), client, method, path, query (``key``
    redacted), status, latency in ms, and the key's name and role (never the key). ``sink``: a file path (appended,
    made if missing) or ``-`` for stderr."""

    def __init__(self, app, sink: str):
        self.app = app
        self._lock = threading.Lock()
        if sink == "-":
            self._out = sys.stderr
        else:
            Path(sink).parent.mkdir(parents=True, exist_ok=True)
            self._out = open(sink, "a", buffering=1, encoding="utf-8")  # noqa: SIM115 - the server's lifetime

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        t0 = time.perf_counter()
        method = scope["method"]
        status = [500]

        async def capture(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            self.write(scope, method, status[0], (time.perf_counter() - t0) * 1000.0)

    def write(self, scope, method: str, status: int, ms: float) -> None:
        client = scope.get("client")
        query = scope.get("query_string", b"").decode("latin-1")
        if query:
            query = urlencode(
                [(k, "REDACTED" if k == "key" else v) for k, v in parse_qsl(query, keep_blank_values=True)]
            )
        key = scope.get("alpha.key")
        line = json.dumps(
            {
                "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "client": f"{client[0]}:{client[1]}" if client else None,
                "method": method,
                "path": scope["path"],
                "query": query or None,
                "status": status,
                "ms": round(ms, 2),
                "key": key.name if key else None,
                "role": key.role if key else None,
            },
            separators=(",", ":"),
        )
        with self._lock:
            self._out.write(line + "\n")
            self._out.flush()
