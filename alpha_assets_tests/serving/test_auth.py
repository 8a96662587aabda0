"""Who may read the serving surfaces (issue 20 #3): hashed API keys with roles on the API, the dashboard pages,
/docs, /openapi.json and the static files; 401 "no credentials" vs 401 "invalid credentials" vs 403; a browser
signs in with ``?key=`` (an HttpOnly cookie) or basic auth; the access log; HEAD; `alpha api-key`; the banner;
HTTPS with a certificate."""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time

import httpx
import pytest
from fastapi.testclient import TestClient

from alpha_assets.cli import main
from alpha_assets.serving.api import create_app
from alpha_assets.serving.security import KeyRing, KeysError, key_hash, key_line
from alpha_assets_tests.serving.conftest import free_port

PM, OPS = "ak_pm-secret-key", "ak_ops-secret-key"
PAGES = ["/", "/book", "/risk", "/models", "/openapi.json", "/docs", "/static/plotly.min.js"]
API = ["/api/portfolio", "/api/exposures", "/api/performance", "/api/risk", "/api/models"]


def _keys() -> KeyRing:
    text = (
        f"# the fund's keys\n{key_line('pm1', 'reader', PM)}\n{key_line('ops', 'operator', OPS)}  # on call\n"
    )
    return KeyRing(KeyRing.parse(text, "keys.txt"), ["keys.txt"])


@pytest.fixture(scope="module")
def client(filled_store, tmp_path_factory):
    log = tmp_path_factory.mktemp("log") / "access.log"
    app = create_app(filled_store["url"], dashboard=True, keys=_keys(), access_log=str(log))
    c = TestClient(app, follow_redirects=False)
    c.log_path = log
    return c


def bearer(key: str) -> dict:
    return {"Authorization": f"Bearer {key}"}


def test_every_surface_but_health_refuses_a_request_without_credentials(client):
    for path in PAGES + API + ["/api/pipeline", "/pipeline"]:
        r = client.get(path)
        assert r.status_code == 401, path
        assert "no credentials" in r.text, path
    assert (
        client.get("/api/portfolio").json()["detail"].startswith("no credentials: send Authorization: Bearer")
    )
    assert client.get("/api/portfolio").headers["www-authenticate"] == "Bearer"
    # a page answers a browser: a sign-in form (no Basic challenge: the browser's prompt would hide it)
    page = client.get("/book")
    assert page.headers["content-type"].startswith("text/html") and "<form" in page.text
    assert page.headers["www-authenticate"] == 'Bearer realm="alpha-assets"'
    health = client.get("/api/health")
    assert health.status_code == 200 and health.json()["status"] == "ok"


def test_a_wrong_key_is_invalid_credentials_not_no_credentials(client):
    for headers in (
        bearer("ak_guess"),
        {"Authorization": "Basic " + base64.b64encode(b"pm1:nope").decode()},
        {"Authorization": "Basic !!"},
        {"Authorization": "Token abc"},
        {"Cookie": "alpha_key=x"},
    ):
        r = client.get("/api/risk", headers=headers)
        assert r.status_code == 401, headers
        assert r.json()["detail"].startswith("invalid credentials: the "), headers
        assert "no credentials" not in r.json()["detail"]
    assert client.get("/risk", headers=bearer("ak_guess")).status_code == 401


def test_a_reader_reads_every_page_and_route_but_the_pipelines_run_status(client):
    for path in PAGES + API:
        assert client.get(path, headers=bearer(PM)).status_code == 200, path
    for path in ("/api/pipeline", "/pipeline", "/metrics"):
        r = client.get(path, headers=bearer(PM))
        assert r.status_code == 403, path
        assert "forbidden: key 'pm1' has role reader" in r.text and "needs role operator" in r.text
    assert client.get("/api/pipeline", headers=bearer(PM)).json()["detail"] == (
        "forbidden: key 'pm1' has role reader; /api/pipeline needs role operator"
    )


def test_an_operator_reads_everything(client):
    for path in PAGES + API + ["/api/pipeline", "/pipeline", "/metrics"]:
        assert client.get(path, headers=bearer(OPS)).status_code == 200, path


def test_a_browser_signs_in_once_with_key_and_keeps_an_httponly_cookie(client, filled_store):
    day = filled_store["days"][2].isoformat()
    browser = TestClient(client.app, follow_redirects=False)  # its own cookie jar
    r = browser.get("/book", params={"date": day, "key": PM})
    assert (
        r.status_code == 303 and r.headers["location"] == f"/book?date={day}"
    )  # the key leaves the address bar
    cookie = r.headers["set-cookie"]
    assert cookie.startswith(f"alpha_key={PM};") and "HttpOnly" in cookie and "SameSite=Lax" in cookie
    c = TestClient(client.app, cookies={"alpha_key": PM})
    page = c.get(r.headers["location"])
    assert page.status_code == 200 and f"Book on {day}" in page.text
    assert c.get("/static/plotly.min.js").status_code == 200  # the page's script, with the same cookie
    assert c.get("/pipeline").status_code == 403  # a reader's cookie is still a reader
    bad = client.get("/", params={"key": "ak_guess"})
    assert bad.status_code == 401 and "invalid credentials" in bad.text and "set-cookie" not in bad.headers


def test_basic_auth_with_the_key_as_the_password_opens_the_dashboard(client):
    basic = {"Authorization": "Basic " + base64.b64encode(f"anyone:{OPS}".encode()).decode()}
    assert client.get("/", headers=basic).status_code == 200
    assert client.get("/pipeline", headers=basic).status_code == 200


def test_head_answers_every_get_route_without_a_body(client):
    h = client.head("/api/health")
    assert h.status_code == 200 and h.content == b"" and h.headers["content-type"] == "application/json"
    assert client.head("/api/portfolio").status_code == 401
    for path in ("/api/portfolio", "/api/performance", "/", "/docs"):
        r = client.head(path, headers=bearer(PM))
        assert r.status_code == 200 and r.content == b"", path
        get = client.get(path, headers=bearer(PM))
        assert r.headers["content-length"] == get.headers["content-length"], path  # what the GET would send
        assert r.headers["content-type"] == get.headers["content-type"], path
    assert client.post("/api/health").status_code == 405  # still read-only


def test_the_access_log_has_one_line_per_request_and_never_the_key(client):
    client.get("/api/models", headers=bearer(OPS))
    client.get("/api/pipeline", headers=bearer(PM))
    TestClient(client.app, follow_redirects=False).get("/risk", params={"key": PM})
    client.get("/api/risk")
    client.head("/api/health")
    text = client.log_path.read_text()
    assert PM not in text and OPS not in text and key_hash(PM) not in text
    lines = [json.loads(line) for line in text.splitlines()][-5:]
    assert [(x["method"], x["path"], x["status"], x["key"], x["role"]) for x in lines] == [
        ("GET", "/api/models", 200, "ops", "operator"),
        ("GET", "/api/pipeline", 403, "pm1", "reader"),
        ("GET", "/risk", 303, "pm1", "reader"),
        ("GET", "/api/risk", 401, None, None),
        ("HEAD", "/api/health", 200, None, None),
    ]
    assert lines[2]["query"] == "key=REDACTED"
    for x in lines:
        when = dt.datetime.fromisoformat(x["time"])
        assert when.utcoffset() == dt.timedelta(0)  # the time carries its zone
        assert x["client"] and x["ms"] >= 0


def test_alpha_api_token_still_works_as_one_operator_key(filled_store):
    keys = KeyRing.from_env(environ={"ALPHA_API_TOKEN": "s3cret"})
    assert [(k.name, k.role) for k in keys.entries()] == [("token", "operator")]
    c = TestClient(create_app(filled_store["url"], dashboard=True, keys=keys))
    assert c.get("/api/pipeline", headers=bearer("s3cret")).status_code == 200
    assert c.get("/").status_code == 401 and c.get("/openapi.json").status_code == 401  # no longer open


def test_keys_come_from_the_environment_and_a_keys_file(tmp_path):
    f = tmp_path / "keys"
    f.write_text(key_line("pm2", "reader", "k2") + "\n\n# comment\n")
    keys = KeyRing.from_env(
        environ={
            "ALPHA_API_KEYS": key_line("pm1", "reader", "k1") + "," + key_line("ops", "operator", "k3"),
            "ALPHA_API_KEYS_FILE": str(f),
        }
    )
    assert {k.name: k.role for k in keys.entries()} == {"pm1": "reader", "ops": "operator", "pm2": "reader"}
    assert keys.authenticate("k2").name == "pm2" and keys.authenticate("k4") is None
    assert keys.describe().startswith(
        "ON: 3 key(s) (2 reader, 1 operator) from ALPHA_API_KEYS, ALPHA_API_KEYS_FILE="
    )
    assert not KeyRing.from_env(environ={}).enabled


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("pm1:reader", "keys.txt:1: expected name:role:sha256hex"),
        ("pm1:admin:" + "a" * 64, "keys.txt:1: role 'admin' is not one of reader, operator"),
        ("\npm1:reader:ak_the-key-itself", "keys.txt:2: pm1's hash must be 64 hex digits"),
        ("pm 1:reader:" + "a" * 64, "keys.txt:1: key name 'pm 1' must be"),
    ],
)
def test_a_bad_keys_entry_is_one_line_naming_it(text, message):
    with pytest.raises(KeysError) as e:
        KeyRing.parse(text, "keys.txt")
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_alpha_api_key_mints_a_key_and_its_hash_line(tmp_path, capsys):
    f = tmp_path / "keys"
    assert main(["api-key", "--name", "pm1", "--role", "reader", "--append", str(f)]) == 0
    out = capsys.readouterr().out
    secret = out.split("stored nowhere: ", 1)[1].split()[0]
    line = f.read_text().strip()
    assert line == f"pm1:reader:{key_hash(secret)}" and secret not in f.read_text()
    assert oct(f.stat().st_mode & 0o777) == "0o600"
    assert KeyRing.from_env(environ={"ALPHA_API_KEYS_FILE": str(f)}).authenticate(secret).role == "reader"
    assert main(["api-key", "--name", "pm1", "--append", str(f)]) == 2
    assert "a key named 'pm1' is already there" in capsys.readouterr().err
    assert main(["api-key", "--name", "p:m"]) == 2
    assert capsys.readouterr().err.startswith("alpha api-key: api-key: key name 'p:m' must be")


def _banner(monkeypatch, tmp_path, capsys, argv, **env) -> tuple[int, str, str, list]:
    import alpha_assets.serving.api as api

    calls = []
    monkeypatch.setattr(api, "serve", lambda app, **kw: calls.append(kw))  # no server: what it would run
    monkeypatch.setenv("ALPHA_HOME", str(tmp_path))
    for name in (
        "ALPHA_SERVING_URL",
        "ALPHA_API_TOKEN",
        "ALPHA_API_KEYS",
        "ALPHA_API_KEYS_FILE",
        "ALPHA_TLS_CERT",
        "ALPHA_TLS_KEY",
        "ALPHA_ACCESS_LOG",
    ):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err, calls


def test_the_banner_says_whether_auth_and_tls_are_on(monkeypatch, tmp_path, capsys):
    rc, out, _, calls = _banner(monkeypatch, tmp_path, capsys, ["serve-api", "--port", "18099"])
    assert rc == 0 and "auth: off (no ALPHA_API_KEYS, ALPHA_API_KEYS_FILE or ALPHA_API_TOKEN)" in out
    assert "TLS: off" in out and f"access log: {tmp_path / 'logs' / 'access.log'}" in out
    assert "ssl_certfile" not in calls[0]
    keys = tmp_path / "keys"
    keys.write_text(key_line("pm1", "reader", "a") + "\n" + key_line("pm2", "reader", "b") + "\n")
    cert, key = tmp_path / "c.pem", tmp_path / "k.pem"
    cert.write_text("x"), key.write_text("y")
    rc, out, _, calls = _banner(
        monkeypatch,
        tmp_path,
        capsys,
        ["dashboard", "--port", "18099", "--tls-cert", str(cert), "--tls-key", str(key), "--access-log", "-"],
        ALPHA_API_KEYS_FILE=str(keys),
        ALPHA_API_TOKEN="t",
    )
    assert rc == 0
    assert (
        "auth: ON: 3 key(s) (2 reader, 1 operator) from ALPHA_API_KEYS_FILE=" in out
        and ", ALPHA_API_TOKEN" in out
    )
    assert "operator-only: /api/pipeline, /metrics, /pipeline; open: /api/health" in out
    assert (
        f"TLS: on (certificate {cert})" in out
        and "https://127.0.0.1:18099/" in out
        and "access log: stderr" in out
    )
    assert calls[0]["ssl_certfile"] == str(cert) and calls[0]["ssl_keyfile"] == str(key)


@pytest.mark.parametrize(
    ("argv", "env", "message"),
    [
        (["--tls-cert", "c.pem"], {}, "TLS needs both a certificate and its private key"),
        (
            ["--tls-cert", "/nope/c.pem", "--tls-key", "/nope/k.pem"],
            {},
            "--tls-cert /nope/c.pem: no such file",
        ),
        (
            [],
            {"ALPHA_API_KEYS": "pm1:reader:abc"},
            "ALPHA_API_KEYS= entry 1: pm1's hash must be 64 hex digits",
        ),
        ([], {"ALPHA_API_KEYS_FILE": "/nope/keys"}, "ALPHA_API_KEYS_FILE=/nope/keys: cannot read it"),
    ],
)
def test_bad_tls_or_key_settings_are_one_line(monkeypatch, tmp_path, capsys, argv, env, message):
    rc, _, err, calls = _banner(monkeypatch, tmp_path, capsys, ["serve-api", *argv], **env)
    assert rc == 2 and not calls
    assert err.startswith(f"alpha serve-api: {message}") and err.count("\n") == 1


def _self_signed(tmp_path) -> tuple:
    """A certificate for 127.0.0.1 and its key, made here (cryptography)."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_path, key_path


@pytest.mark.service
def test_serve_api_over_https_with_a_certificate_and_keys(filled_store, tmp_path):
    cert, key = _self_signed(tmp_path)
    port = free_port()
    log = tmp_path / "access.log"
    env = {
        **os.environ,
        "ALPHA_SERVING_URL": filled_store["url"],
        "ALPHA_API_KEYS": key_line("pm1", "reader", PM),
        "ALPHA_TLS_CERT": str(cert),
        "ALPHA_TLS_KEY": str(key),
        "ALPHA_ACCESS_LOG": str(log),
    }
    env.pop("ALPHA_API_TOKEN", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "alpha_assets.cli", "serve-api", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    base = f"https://127.0.0.1:{port}"
    try:
        with httpx.Client(base_url=base, verify=str(cert), timeout=5) as c:
            health = None
            for _ in range(240):
                try:
                    health = c.get("/api/health")
                    break
                except httpx.TransportError:
                    assert proc.poll() is None, "alpha serve-api exited"
                    time.sleep(0.25)
            assert health is not None and health.json()["status"] == "ok"
            assert c.get("/api/portfolio").status_code == 401
            assert len(c.get("/api/portfolio", headers=bearer(PM)).json()["positions"]) == 30
            assert c.get("/api/pipeline", headers=bearer(PM)).status_code == 403
            r = c.get("/", params={"key": PM})  # over HTTPS the cookie is Secure
            assert r.status_code == 303 and "Secure" in r.headers["set-cookie"]
            head = c.head("/api/portfolio", headers=bearer(PM))  # through uvicorn: no body after the length
            assert head.status_code == 200 and head.content == b"" and int(head.headers["content-length"]) > 0
        with pytest.raises(httpx.TransportError):  # plain HTTP on the TLS port is not served
            httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=5).raise_for_status()
        assert [json.loads(x)["path"] for x in log.read_text().splitlines()][-5:] == [
            "/api/portfolio",
            "/api/portfolio",
            "/api/pipeline",
            "/",
            "/api/portfolio",
        ]
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        out, err = proc.communicate(timeout=30)
    assert "TLS: on (certificate" in out and "auth: ON: 1 key(s) (1 reader, 0 operator)" in out
    assert "Traceback" not in err and "Exception in ASGI application" not in err
