"""Apache Kafka's own jars, and the ``java`` command lines that run them.

The jars (broker, storage tool, MirrorMaker 2, a log4j2 backend) are fetched once with
Maven (``pom.xml`` beside this file pins the version) into a cache outside the
repository: ``$COLDWAKE_KAFKA_CACHE/kafka-<version>/lib``, where ``COLDWAKE_KAFKA_CACHE``
defaults to ``$XDG_CACHE_HOME/coldwake`` or ``~/.cache/coldwake``.

MirrorMaker 2 and any other Kafka tool reuse :func:`ensure_jars` and :func:`java_cmd`.
``COLDWAKE_KAFKA_JVM_OPTS`` adds JVM flags to every Kafka JVM.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from pathlib import Path
from typing import Final

from deploy.kafka.errors import LauncherError, ToolMissingError
from deploy.kafka.logs import tail
from deploy.kafka.processes import locked

log: Final = logging.getLogger("deploy.kafka")

POM: Final = Path(__file__).with_name("pom.xml")
MIN_JAVA: Final = 17

BROKER_MAIN: Final = "kafka.Kafka"
STORAGE_TOOL_MAIN: Final = "kafka.tools.StorageTool"
MIRROR_MAKER_MAIN: Final = "org.apache.kafka.connect.mirror.MirrorMaker"

# Four brokers and MirrorMaker share 2 cores in tests: small heaps and the serial
# collector keep each JVM's memory and background CPU low, and the C1 compiler alone
# (TieredStopAtLevel=1) starts a broker about a third faster than the full JIT, which
# matters more here than peak throughput. Benchmarks against these brokers can get the
# full JIT back with COLDWAKE_KAFKA_JVM_OPTS="-XX:TieredStopAtLevel=4" (appended last,
# so it wins).
BROKER_HEAP: Final = ("-Xms128m", "-Xmx384m")
TOOL_HEAP: Final = ("-Xms32m", "-Xmx128m")
JVM_FLAGS: Final = (
    "-XX:+UseSerialGC",
    "-XX:TieredStopAtLevel=1",
    "-XX:+ExitOnOutOfMemoryError",
    "-Djava.awt.headless=true",
)
JVM_OPTS_ENV: Final = "COLDWAKE_KAFKA_JVM_OPTS"


def kafka_version(pom: Path = POM) -> str:
    """The Kafka version pinned in ``pom.xml`` (property ``kafka.version``)."""
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    node = ET.parse(pom).getroot().find("m:properties/m:kafka.version", ns)
    if node is None or not (node.text or "").strip():
        raise LauncherError(f"{pom} has no <kafka.version> property")
    return (node.text or "").strip()


def cache_root() -> Path:
    """Where fetched jars are kept: ``$COLDWAKE_KAFKA_CACHE``, else the user cache."""
    explicit = os.environ.get("COLDWAKE_KAFKA_CACHE")
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "coldwake"


def lib_dir(version: str | None = None) -> Path:
    """The jar directory of ``version`` (default: the pinned one)."""
    return cache_root() / f"kafka-{version or kafka_version()}" / "lib"


def require_tool(name: str, hint: str) -> str:
    """The path of executable ``name``.

    Raises:
        ToolMissingError: It is not on PATH.
    """
    path = shutil.which(name)
    if path is None:
        raise ToolMissingError(f"{name} not found on PATH; {hint}")
    return path


def require_java() -> str:
    """The path of a ``java`` that can run Kafka 4 (Java 17 or newer).

    Raises:
        ToolMissingError: It is missing or too old.
    """
    java = require_tool("java", f"install a Java {MIN_JAVA} JDK")
    out = subprocess.run(
        [java, "-version"], capture_output=True, text=True, timeout=60, check=False
    ).stderr
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if m is None:
        raise ToolMissingError(f"cannot tell the version of {java} (`java -version` said {out!r})")
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_x" style
        major = int(m.group(2))
    if major < MIN_JAVA:
        raise ToolMissingError(f"{java} is Java {major}; Kafka 4 needs Java {MIN_JAVA} or newer")
    return java


def _pom_digest() -> str:
    return hashlib.sha256(POM.read_bytes()).hexdigest()


def ensure_jars() -> Path:
    """Fetch the pinned Kafka jars with Maven unless cached; return the jar directory.

    The copy goes to a temporary directory first and is renamed into place with a
    marker holding the pom's digest, so an interrupted fetch or an edited pom is
    fetched again instead of leaving a half-filled classpath. Concurrent first runs
    (parallel test sessions) wait for one fetch instead of racing.

    Raises:
        ToolMissingError: The cache is cold and ``mvn`` is missing.
        LauncherError: Maven failed.
    """
    version = kafka_version()
    lib = lib_dir(version)
    marker = lib / ".coldwake-pom-sha256"
    digest = _pom_digest()

    def cached() -> bool:
        return marker.is_file() and marker.read_text().strip() == digest

    if cached():
        return lib
    mvn = require_tool("mvn", "install Maven 3.8+ (needed once, to fetch the Kafka jars)")
    with locked(lib.parent, ".fetch.lock"):
        if cached():
            return lib
        log.info("fetching Kafka %s jars with Maven (first run only)…", version)
        started = time.monotonic()
        tmp = lib.parent / f".lib.{os.getpid()}.tmp"
        shutil.rmtree(tmp, ignore_errors=True)
        mvn_log = lib.parent / "mvn.log"
        with mvn_log.open("wb") as out:
            rc = subprocess.run(
                [
                    mvn,
                    "-q",
                    "-B",
                    "-f",
                    str(POM),
                    "dependency:copy-dependencies",
                    f"-DoutputDirectory={tmp}",
                ],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                check=False,
            ).returncode
        if rc != 0 or not any(tmp.glob("kafka_2.13-*.jar")):
            shutil.rmtree(tmp, ignore_errors=True)
            raise LauncherError(
                f"Maven could not fetch Kafka {version} (exit {rc}); is Maven Central "
                f"reachable? See {mvn_log}:\n{tail(mvn_log, 15)}"
            )
        (tmp / marker.name).write_text(digest + "\n")
        shutil.rmtree(lib, ignore_errors=True)  # a stale copy for an older pom
        tmp.rename(lib)
    log.info(
        "fetched %d jars into %s in %.1f s",
        len(list(lib.glob("*.jar"))),
        lib,
        time.monotonic() - started,
    )
    return lib


def classpath(lib: Path) -> str:
    """A JVM classpath of every jar in ``lib`` (the JVM expands ``dir/*`` itself)."""
    return str(lib / "*")


def java_cmd(
    main_class: str,
    args: Sequence[str],
    *,
    lib: Path,
    java: str = "java",
    heap: Sequence[str] = BROKER_HEAP,
    log_dir: Path | None = None,
    log_config: Path | None = None,
    jvm_args: Sequence[str] = (),
) -> list[str]:
    """The command line that runs ``main_class`` from Kafka's jars.

    Args:
        main_class: e.g. :data:`BROKER_MAIN` or :data:`MIRROR_MAKER_MAIN`.
        args: Arguments of the main class.
        lib: Jar directory from :func:`ensure_jars`.
        java: The ``java`` executable.
        heap: Heap flags.
        log_dir: Value of ``kafka.logs.dir`` (where ``server.log`` goes).
        log_config: A log4j2 configuration file.
        jvm_args: Further JVM flags.

    ``$COLDWAKE_KAFKA_JVM_OPTS`` (split on whitespace) is appended to the JVM flags.
    """
    cmd = [java, *heap, *JVM_FLAGS, *jvm_args, *os.environ.get(JVM_OPTS_ENV, "").split()]
    if log_dir is not None:
        cmd.append(f"-Dkafka.logs.dir={log_dir}")
    if log_config is not None:
        cmd.append(f"-Dlog4j2.configurationFile={log_config}")
    return [*cmd, "-cp", classpath(lib), main_class, *args]
