"""The query API as a real process (`python -m state.api`) and a stdlib HTTP client for it."""

from __future__ import annotations

import http.client
import os
import select
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from state.api.names import POSITION_HEADER
from tests.integration.kafka_io import ROOT


@dataclass(frozen=True, slots=True)
class Answer:
    """One HTTP answer: status, headers (names lowercased), body."""

    status: int
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return orjson.loads(self.body)

    @property
    def position(self) -> int:
        return int(self.headers[POSITION_HEADER.lower()])


def api_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("COLDWAKE_")}
    return env | {"PYTHONPATH": str(ROOT)} | extra


@dataclass
class ApiServer:
    """A running `python -m state.api`; `get` opens one connection per thread."""

    proc: subprocess.Popen[bytes]
    host: str
    port: int
    context: ssl.SSLContext | None = None
    log: list[str] = field(default_factory=list)
    _local: threading.local = field(default_factory=threading.local)

    def connection(self) -> http.client.HTTPConnection:
        if self.context is not None:
            return http.client.HTTPSConnection(
                self.host, self.port, timeout=30, context=self.context
            )
        return http.client.HTTPConnection(self.host, self.port, timeout=30)

    def get(self, path: str, headers: dict[str, str] | None = None) -> Answer:
        """GET on a kept-alive connection (a new one if the server closed it)."""
        for attempt in range(2):
            conn = getattr(self._local, "conn", None) or self.connection()
            self._local.conn = conn
            try:
                conn.request("GET", path, headers=headers or {})
                response = conn.getresponse()
                body = response.read()
            except (http.client.RemoteDisconnected, ConnectionError, BrokenPipeError):
                conn.close()
                self._local.conn = None
                if attempt:
                    raise
                continue
            if response.getheader("connection") == "close":
                conn.close()
                self._local.conn = None
            names = {k.lower(): v for k, v in response.getheaders()}
            return Answer(response.status, names, body)
        raise AssertionError("unreachable")

    def stop(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def api_command(data: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "state.api", "--data", str(data), *args]


def start_api(
    data: Path, *args: str, env: dict[str, str] | None = None, timeout: float = 90.0
) -> ApiServer:
    """Start the server on 127.0.0.1, a free port; return once it said where it listens."""
    proc = subprocess.Popen(
        api_command(data, "--port", "0", *args),
        cwd=ROOT,
        env=env or api_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None:
            proc.kill()
            rest = proc.stderr.read().decode(errors="replace")
            raise AssertionError(f"the API did not start: {line.decode()}{rest}")
        ready, _, _ = select.select([proc.stderr], [], [], min(left, 0.5))
        if ready:
            line += os.read(proc.stderr.fileno(), 1)
    text = line.decode()
    assert text.startswith("coldwake: query API on http"), text
    url = text.split(" on ", 1)[1].split(" ", 1)[0]
    host, port = url.split("://", 1)[1].rsplit(":", 1)
    server = ApiServer(proc, host, int(port), log=[text])
    # Keep reading its stderr, so that a chatty server never blocks on a full pipe.
    threading.Thread(target=_drain, args=(proc, server.log), daemon=True).start()
    return server


def _drain(proc: subprocess.Popen[bytes], log: list[str]) -> None:
    assert proc.stderr is not None
    for raw in proc.stderr:
        log.append(raw.decode(errors="replace"))


def refused(data: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    """Start a server expected to refuse; `finish_refused` collects its one line."""
    return subprocess.Popen(
        api_command(data, *args),
        cwd=ROOT,
        env=env or api_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def finish_refused(proc: subprocess.Popen[bytes]) -> tuple[int, list[str]]:
    try:
        out, err = proc.communicate(timeout=90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        raise AssertionError("the server did not refuse to start") from None
    assert out == b""
    return proc.returncode, err.decode().splitlines()
