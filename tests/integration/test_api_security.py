"""`python -m state.api` is safe by default: what it refuses at start, the token, TLS,
hostile requests (4xx JSON), read-only methods."""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from state.api.names import (
    ALERTS_ROUTE,
    HEALTHZ_ROUTE,
    MAX_KEY_BYTES,
    METRICS_ROUTE,
    OPENAPI_ROUTE,
    POSITION_HEADER,
    READYZ_ROUTE,
    TABLES_ROUTE,
    TOKEN_VAR,
)
from state.store import TableWriter
from state.table import table_path
from tests.integration.api_client import ApiServer, api_env, finish_refused, refused, start_api

pytestmark = pytest.mark.integration

TOKEN = "s3cret-token-for-the-tests-0123456789"
GOOD = {"Authorization": f"Bearer {TOKEN}"}
ROWS = "/api/tables/container-state/rows"
ROW = b'{"container_id":"MSKU1234565","temp_c":-18.4,"open_alerts":[],"alert_ids":{}}'
#: Two containers with open alerts, on two vessels.
ALERTING = {
    "ONEU7060604": b'{"container_id":"ONEU7060604","vessel_id":"IMO9531129",'
    b'"open_alerts":["power_loss","sensor_fault"],'
    b'"alert_ids":{"power_loss":"b2","sensor_fault":"0f"}}',
    "TRIU1234562": b'{"container_id":"TRIU1234562","vessel_id":"IMO9778791",'
    b'"open_alerts":["power_loss"],"alert_ids":{"power_loss":"a1"}}',
}


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("api-security")
    with TableWriter(table_path(path)) as writer:
        writer.apply(42, [("MSKU1234565", ROW), *ALERTING.items()])
    return path


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1, made with the openssl command line."""
    openssl = shutil.which("openssl") or "/usr/bin/openssl"
    home = tmp_path_factory.mktemp("tls")
    cert, key = home / "cert.pem", home / "key.pem"
    command = [openssl, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    command += ["-nodes", "-keyout", str(key), "-out", str(cert), "-days", "1"]
    command += ["-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"]
    subprocess.run(command, check=True, capture_output=True)
    return cert, key


@pytest.fixture(scope="module")
def https(data: Path, certificate: tuple[Path, Path]) -> Iterator[ApiServer]:
    cert, key = certificate
    api = start_api(
        data, "--tls-cert", str(cert), "--tls-key", str(key), env=api_env(**{TOKEN_VAR: TOKEN})
    )
    api.context = ssl.create_default_context(cafile=str(cert))
    try:
        yield api
    finally:
        api.stop()


def test_every_start_up_error_is_one_line_and_exit_2(
    data: Path, tmp_path: Path, certificate: tuple[Path, Path]
) -> None:
    cert, _ = certificate
    # Held by this test on every address: a server that tried to bind it would say so.
    held = socket.create_server(("", 0))
    busy = socket.create_server(("127.0.0.1", 0))
    port = str(held.getsockname()[1])
    cases: dict[str, tuple[list[object], dict[str, str], str]] = {
        "not loopback, no token": (
            [data, "--host", "0.0.0.0", "--port", port],
            {},
            f"coldwake: --host 0.0.0.0 is not loopback: set {TOKEN_VAR} to a long random string",
        ),
        "a short token": (
            [data, "--host", "0.0.0.0", "--port", port],
            {TOKEN_VAR: "hunter2"},
            f"coldwake: {TOKEN_VAR} is shorter than 16 characters",
        ),
        "an unreadable key": (
            [data, "--tls-cert", cert, "--tls-key", tmp_path / "missing.pem"],
            {},
            f"coldwake: cannot load the TLS certificate {cert} with key {tmp_path}/missing.pem",
        ),
        "a certificate alone": (
            [data, "--tls-cert", cert],
            {},
            "coldwake: --tls-cert and --tls-key go together",
        ),
        "no tables": (
            [tmp_path],
            {},
            f"coldwake: no tables in {tmp_path}: neither a container-state table",
        ),
        "a bad port": (
            [data, "--port", "eighty"],
            {},
            "coldwake: argument --port: invalid int value: 'eighty' (see python -m state.api",
        ),
        "a typo in a variable": (
            [data],
            {"COLDWAKE_API_TOKNE": TOKEN},
            "coldwake: configuration error: COLDWAKE_API_TOKNE is not a Coldwake setting; "
            f"did you mean {TOKEN_VAR}?",
        ),
        "a port in use": (
            [data, "--port", str(busy.getsockname()[1])],
            {},
            f"coldwake: cannot listen on 127.0.0.1 port {busy.getsockname()[1]}: "
            "Address already in use",
        ),
    }
    try:
        # All at once: each is a Python start-up; none gets to serve.
        procs = {
            name: refused(Path(str(args[0])), *map(str, args[1:]), env=api_env(**env))
            for name, (args, env, _) in cases.items()
        }
        for name, proc in procs.items():
            code, lines = finish_refused(proc)
            assert code == 2, (name, lines)
            assert len(lines) == 1 and lines[0].startswith(cases[name][2]), (name, lines)
    finally:
        held.close()
        busy.close()


def test_without_the_token_every_endpoint_but_healthz_is_401(https: ApiServer) -> None:
    for path in (TABLES_ROUTE, READYZ_ROUTE, METRICS_ROUTE, OPENAPI_ROUTE, "/no/such/route"):
        for headers in (
            {},
            {"Authorization": "Bearer wrong-token-of-the-same-kind-0123"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": TOKEN},
            {"Authorization": f"Basic {TOKEN}"},
        ):
            answer = https.get(path, headers)
            assert answer.status == 401, (path, headers)
            assert answer.json() == {
                "error": "this server requires Authorization: Bearer <COLDWAKE_API_TOKEN>"
            }
            assert answer.headers["www-authenticate"] == 'Bearer realm="coldwake"'
            assert POSITION_HEADER.lower() not in answer.headers  # nothing about the data
    healthz = https.get(HEALTHZ_ROUTE)
    assert (healthz.status, healthz.json()) == (200, {"status": "ok"})


def test_with_the_token_over_https_it_answers(https: ApiServer) -> None:
    answer = https.get(f"{ROWS}/MSKU1234565", GOOD)
    assert (answer.status, answer.body, answer.position) == (200, ROW, 42)
    assert https.get(METRICS_ROUTE, GOOD).status == 200
    assert https.get(READYZ_ROUTE, GOOD).json()["ready"] is True


def test_tls_is_required_and_verified(https: ApiServer) -> None:
    plain = http.client.HTTPConnection(https.host, https.port, timeout=10)
    with pytest.raises((http.client.HTTPException, ConnectionError)):
        plain.request("GET", HEALTHZ_ROUTE)
        plain.getresponse().read()
    plain.close()
    untrusted = http.client.HTTPSConnection(
        https.host, https.port, timeout=10, context=ssl.create_default_context()
    )
    with pytest.raises(ssl.SSLCertVerificationError):
        untrusted.request("GET", HEALTHZ_ROUTE)
    untrusted.close()
    trusted = http.client.HTTPSConnection(https.host, https.port, timeout=10, context=https.context)
    trusted.request("GET", HEALTHZ_ROUTE)
    assert orjson.loads(trusted.getresponse().read()) == {"status": "ok"}
    trusted.close()


def test_a_vessel_dirs_open_alerts_come_from_its_container_state_rows(https: ApiServer) -> None:
    good = GOOD

    def alert(alert_id: str, kind: str, vessel: str, container: str) -> dict[str, str]:
        return {"alert_id": alert_id, "kind": kind, "vessel_id": vessel, "container_id": container}

    f0 = alert("0f", "sensor_fault", "IMO9531129", "ONEU7060604")
    a1 = alert("a1", "power_loss", "IMO9778791", "TRIU1234562")
    b2 = alert("b2", "power_loss", "IMO9531129", "ONEU7060604")
    assert https.get("/api/alerts", good).json() == {"alerts": [f0, a1, b2], "next": None}
    assert https.get("/api/alerts?limit=2", good).json() == {"alerts": [f0, a1], "next": "a1"}
    assert https.get("/api/alerts?after=a1", good).json() == {"alerts": [b2], "next": None}
    by_vessel = https.get("/api/alerts?vessel=IMO9531129&kind=power_loss", good)
    assert by_vessel.json() == {"alerts": [b2], "next": None}


# -- hostile requests: 4xx JSON, whatever they send -----------------------------------

HOSTILE = [
    # (path, status, start of the error)
    ("/api/tables/..%2F..%2Fetc%2Fpasswd/rows", 404, "no endpoint at this path"),
    ("/api/tables/%2e%2e%2f/rows", 404, "no endpoint at this path"),
    ("/api/tables/%2e%2e/rows", 404, "no table '..' here; the tables are container-state"),
    ("/api/tables/../rows/x", 404, "no table '..' here"),
    ("/api/tables/ships/rows", 404, "no table 'ships' here; the tables are container-state"),
    ("/api/tables/ships/rows/a", 404, "no table 'ships' here"),
    ("/nope", 404, "no endpoint at this path"),
    (f"{ROWS}?limit=1000000", 400, "limit 1000000 is above the cap of 1000 rows a page"),
    (f"{ROWS}?limit=0", 400, "limit must be at least 1"),
    (f"{ROWS}?limit=lots", 400, "query parameter 'limit' is not valid"),
    (f"{ROWS}/{'K' * (MAX_KEY_BYTES + 1)}", 414, "key is longer than 1024 bytes"),
    (f"{ROWS}?prefix={'p' * 2000}", 414, "prefix is longer than 1024 bytes"),
    (f"{TABLES_ROUTE}?x={'q' * 9000}", 414, "the query string is longer than"),
    (f"{ROWS}/{'K' * 1_000_000}", 400, "the request is not valid HTTP, or its request line"),
    (f"{ALERTS_ROUTE}?state=closed", 400, "state 'closed' is not served"),
    (f"{ALERTS_ROUTE}?kind=fire", 400, "kind 'fire' is not an alert kind"),
    (f"{TABLES_ROUTE}?min_position=-1", 400, "query parameter 'min_position' is not valid"),
    (f"{TABLES_ROUTE}?wait_ms=60000", 400, "query parameter 'wait_ms' is not valid"),
    (f"{ROWS}/%00", 404, "no row '\\x00' in the vessel table"),
]


@pytest.mark.parametrize(("path", "status", "error"), HOSTILE, ids=[h[0][:40] for h in HOSTILE])
def test_hostile_requests_get_4xx_json_with_an_error(
    https: ApiServer, path: str, status: int, error: str
) -> None:
    answer = https.get(path, GOOD)
    assert answer.status == status, answer
    assert answer.headers["content-type"] == "application/json"
    body = answer.json()
    assert list(body) == ["error"] and body["error"].startswith(error), body
    assert "Traceback" not in body["error"]


def test_only_get_is_allowed(https: ApiServer) -> None:
    for method in ("POST", "PUT", "DELETE", "PATCH"):
        conn = https.connection()
        conn.request(method, f"{ROWS}/MSKU1234565", body=b"{}", headers=GOOD)
        response = conn.getresponse()
        body = orjson.loads(response.read())
        conn.close()
        assert (response.status, response.getheader("allow")) == (405, "GET")
        assert body == {"error": f"method {method} is not allowed: the API is read-only (GET)"}


def test_a_request_the_http_parser_cannot_read_is_a_json_400(https: ApiServer) -> None:
    conn = https.connection()
    conn.connect()
    assert conn.sock is not None
    conn.sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n")
    response = http.client.HTTPResponse(conn.sock)
    response.begin()
    assert response.status == 400
    assert orjson.loads(response.read())["error"].startswith("the request is not valid HTTP")
    conn.close()
