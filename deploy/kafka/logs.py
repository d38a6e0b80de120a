"""Reading a node's logs back: the lines that explain why it failed.

Kafka writes ``server.log`` (via the log4j2 configuration in :mod:`deploy.kafka.config`);
the JVM's own stdout and stderr go to ``console.log``, where failures before logging is
set up (a bad flag, a missing class) land.
"""

from __future__ import annotations

from pathlib import Path


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of ``path``, indented, for an error message."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return f"  ({path} is unreadable)"
    return "\n".join("  " + line for line in text.splitlines()[-lines:])


def startup_errors(server_log: Path, console_log: Path, limit: int = 3) -> str:
    """The first errors of a node's latest start (the root cause comes first).

    Args:
        server_log: Kafka's log of the node.
        console_log: The JVM's stdout and stderr; its end is shown when Kafka's log holds
            no error.
        limit: How many errors to show.
    """
    try:
        text = server_log.read_text(errors="replace")
    except OSError:
        text = ""
    # Logs are appended across restarts; Kafka prints its config at each start.
    lines = text[text.rfind("KafkaConfig values:") :].splitlines()
    found: list[str] = []
    for i, line in enumerate(lines):
        if line.startswith("[") and (" ERROR " in line or " FATAL " in line):
            found.append("  " + line[:300])
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            if nxt and not nxt.startswith(("[", "\t")):
                found.append("    " + nxt[:300])  # the exception's message
            if len(found) >= 2 * limit:
                break
    if found:
        return f"first errors in {server_log}:\n" + "\n".join(found)
    return f"end of {console_log}:\n{tail(console_log, 10)}"
