"""The link between the vessels and the shore: Toxiproxy, built once, driven over its REST API.

Every vessel node's ``MIRROR`` listener sits behind a proxy of its own (named
``<vessel>-<node>``), and the listener advertises that proxy, so MirrorMaker 2 reaches
the vessel only through it. One Toxiproxy process serves every proxy of a deployment;
it starts with ``-config toxiproxy.json`` so that a restart (``up`` after ``down``)
recreates them, every link back ``up``.

Toxiproxy (Shopify's, v2.12.0) is built with ``go install`` into the same cache as the
Kafka jars (``<cache>/toxiproxy-2.12.0/bin/server``); ``go`` is needed once.

Link modes, per vessel (every proxy of the vessel at once):

* ``up``: no toxics, enabled.
* ``down``: the proxies are disabled: connections are closed and new ones refused.
* ``blackhole``: connections are accepted but nothing gets through either way and
  nothing is closed (a ``timeout`` toxic with timeout 0), like a link that stops
  answering: clients only notice through their own timeouts.
* ``satellite``: 64 kB/s (512 kbit/s) each way and 300 ms latency each way (600 ms
  round trip), like a VSAT link. Toxiproxy caps bandwidth per connection, and
  MirrorMaker's task fetches over one connection per vessel node, so each of a vessel's
  N proxies gets 1/N of the rate: together they carry about 512 kbit/s.

Going back to ``up`` from ``blackhole`` also closes every open connection: Toxiproxy's
black hole drops bytes from the middle of TCP streams, which no real network does (TCP
either delivers every byte in order or breaks), so a connection that lived through it
may be out of step with its peer and must not carry on.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Final, Literal, get_args

from deploy.kafka.errors import LauncherError
from deploy.kafka.jars import cache_root, require_tool
from deploy.kafka.logs import tail
from deploy.kafka.parts import Broker, Cluster, Link
from deploy.kafka.ports import HOST
from deploy.kafka.processes import locked, running_pid, start_background

log: Final = logging.getLogger("deploy.kafka")

TOXIPROXY_VERSION: Final = "2.12.0"
TOXIPROXY_MODULE: Final = "github.com/Shopify/toxiproxy/v2/cmd/server"
BUILD_TIMEOUT_S: Final = 900.0

LinkMode = Literal["up", "down", "blackhole", "satellite"]
LINK_MODES: Final[tuple[str, ...]] = get_args(LinkMode)
#: 512 kbit/s in Toxiproxy's unit (1000 bytes per second).
SATELLITE_RATE_KB_S: Final = 64
#: One way; the round trip is twice this.
SATELLITE_LATENCY_MS: Final = 300
_STREAMS: Final = ("upstream", "downstream")


def toxiproxy_binary() -> Path:
    """Where the built Toxiproxy server is cached."""
    return cache_root() / f"toxiproxy-{TOXIPROXY_VERSION}" / "bin" / "server"


def ensure_toxiproxy() -> Path:
    """Build Toxiproxy with ``go install`` unless cached; return the server's path.

    The build goes to a temporary directory that is renamed into place, so an
    interrupted build is built again; concurrent first runs wait for one build.

    Raises:
        ToolMissingError: It is not cached and ``go`` is missing.
        LauncherError: The build failed.
    """
    binary = toxiproxy_binary()
    if os.access(binary, os.X_OK):
        return binary
    go = require_tool(
        "go", f"install Go 1.23+ (needed once, to build Toxiproxy {TOXIPROXY_VERSION})"
    )
    root = binary.parent.parent
    with locked(root, ".build.lock"):
        if os.access(binary, os.X_OK):
            return binary
        log.info("building Toxiproxy %s with go install (first run only)…", TOXIPROXY_VERSION)
        started = time.monotonic()
        tmp = root / f".bin.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        go_log = root / "go.log"
        env = {**os.environ, "GOBIN": str(tmp), "CGO_ENABLED": "0"}
        with go_log.open("wb") as out:
            try:
                rc = subprocess.run(
                    [go, "install", f"{TOXIPROXY_MODULE}@v{TOXIPROXY_VERSION}"],
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    env=env,
                    timeout=BUILD_TIMEOUT_S,
                    check=False,
                ).returncode
            except subprocess.TimeoutExpired:
                rc = -1
        if rc != 0 or not (tmp / "server").is_file():
            shutil.rmtree(tmp, ignore_errors=True)
            raise LauncherError(
                f"go install of Toxiproxy {TOXIPROXY_VERSION} failed (exit {rc}); is the Go "
                f"module proxy reachable? See {go_log}:\n{tail(go_log, 15)}"
            )
        shutil.rmtree(binary.parent, ignore_errors=True)
        tmp.rename(binary.parent)
    log.info("built Toxiproxy into %s in %.1f s", binary, time.monotonic() - started)
    return binary


def proxy_name(broker: Broker) -> str:
    """The proxy in front of a vessel node's ``MIRROR`` listener."""
    return f"{broker.cluster}-{broker.node_id}"


def proxies(vessels: list[Cluster]) -> list[dict[str, Any]]:
    """Toxiproxy's proxy definitions for every vessel node."""
    return [
        {
            "name": proxy_name(b),
            "listen": f"{HOST}:{b.proxy_port}",
            "upstream": f"{HOST}:{b.mirror_port}",
            "enabled": True,
        }
        for c in vessels
        for b in c.brokers
    ]


def start_link(link: Link, vessels: list[Cluster], timeout: float = 30.0) -> None:
    """Start Toxiproxy with every vessel node's proxy; return once they all listen.

    Records the PID in ``link``.

    Raises:
        LauncherError: It could not be built, exited, or its proxies did not appear.
    """
    binary = ensure_toxiproxy()
    link.home.mkdir(parents=True, exist_ok=True)
    wanted = proxies(vessels)
    link.config.write_text(json.dumps(wanted, indent=2) + "\n")
    cmd = [str(binary), "-host", HOST, "-port", str(link.api_port), "-config", str(link.config)]
    log.info("starting the link proxy on %s", link.api)
    link.pid = start_background(
        cmd, cwd=link.home, console_log=link.console_log, env={"LOG_LEVEL": "info"}
    )
    api = Toxiproxy(link.api)
    deadline = time.monotonic() + timeout
    while True:
        if running_pid(link) is None:
            raise LauncherError(
                f"the link proxy exited while starting; end of its log:\n"
                f"{tail(link.console_log, 10)}"
            )
        try:
            if {p["name"] for p in wanted} <= set(api.proxies()):
                return
        except LauncherError:
            pass
        if time.monotonic() > deadline:
            raise LauncherError(
                f"the link proxy at {link.api} has not its proxies after "
                f"{timeout:.0f} s; see {link.console_log}"
            )
        time.sleep(0.1)


class Toxiproxy:
    """A client of Toxiproxy's REST API (JSON over HTTP, standard library only).

    Args:
        api: Base URL, e.g. ``http://127.0.0.1:8474``.
        timeout: Seconds per request.
    """

    def __init__(self, api: str, timeout: float = 5.0) -> None:
        self.api = api
        self.timeout = timeout

    def _call(self, method: str, path: str, body: object = None) -> Any:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.api + path, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                raw = resp.read()
        except urllib.error.HTTPError as e:
            detail = e.read().decode(errors="replace").strip()
            raise LauncherError(f"link proxy: {method} {path} failed: {e.code} {detail}") from e
        except OSError as e:
            raise LauncherError(f"link proxy at {self.api} is unreachable ({e}); is it up?") from e
        return json.loads(raw) if raw.strip() else None

    def proxies(self) -> dict[str, dict[str, Any]]:
        """Every proxy by name, with ``enabled`` and its ``toxics``."""
        result: dict[str, dict[str, Any]] = self._call("GET", "/proxies")
        return result

    def set_enabled(self, proxy: str, enabled: bool) -> None:
        """Enable or disable a proxy (disabling closes its connections)."""
        self._call("POST", f"/proxies/{proxy}", {"enabled": enabled})

    def add_toxic(self, proxy: str, name: str, kind: str, stream: str, **attributes: int) -> None:
        """Add a toxic of type ``kind`` to one direction (``upstream``: client to server)."""
        self._call(
            "POST",
            f"/proxies/{proxy}/toxics",
            {"name": name, "type": kind, "stream": stream, "attributes": attributes},
        )

    def remove_toxic(self, proxy: str, name: str) -> None:
        """Remove a toxic from a proxy."""
        self._call("DELETE", f"/proxies/{proxy}/toxics/{name}")


def link_mode(api: Toxiproxy, vessel: Cluster) -> LinkMode:
    """The vessel's link mode as its proxies are now (``down`` if any proxy is disabled)."""
    found = api.proxies()
    mine = [found.get(proxy_name(b)) for b in vessel.brokers]
    if any(p is None or not p["enabled"] for p in mine):
        return "down"
    kinds = {t["type"] for p in mine if p for t in p["toxics"]}
    if "timeout" in kinds:
        return "blackhole"
    return "satellite" if kinds else "up"


def set_link(api: Toxiproxy, vessel: Cluster, mode: LinkMode) -> None:
    """Put every proxy of ``vessel`` in ``mode`` (see the module docstring).

    Raises:
        LauncherError: Toxiproxy refused or is unreachable.
    """
    found = api.proxies()
    rate = max(SATELLITE_RATE_KB_S // len(vessel.brokers), 1)
    for b in vessel.brokers:
        name = proxy_name(b)
        if name not in found:
            raise LauncherError(f"the link proxy has no proxy {name}; run `down` and `up` again")
        toxics = found[name]["toxics"]
        blackholed = any(t["type"] == "timeout" for t in toxics)
        for t in toxics:
            api.remove_toxic(name, t["name"])
        if mode == "down" or blackholed:
            api.set_enabled(name, False)
        # Toxics first, then enable: a proxy that comes up must not let a burst
        # through at full speed before its limits are in place.
        if mode == "blackhole":
            for stream in _STREAMS:
                api.add_toxic(name, f"blackhole-{stream}", "timeout", stream, timeout=0)
        elif mode == "satellite":
            for stream in _STREAMS:
                api.add_toxic(
                    name, f"delay-{stream}", "latency", stream, latency=SATELLITE_LATENCY_MS
                )
                api.add_toxic(name, f"rate-{stream}", "bandwidth", stream, rate=rate)
        if mode != "down":
            api.set_enabled(name, True)
    log.info("link of %s is %s", vessel.name, mode)
