"""The one error the Kafka edges raise, and how a running flow reports it."""

from __future__ import annotations

import sys
from typing import NoReturn


class KafkaUnavailableError(RuntimeError):
    """Brokers could not be reached, a topic is missing, or a delivery failed."""


def stop(message: str) -> NoReturn:
    """Say why the run stops, then stop it.

    Raised inside a running dataflow, an exception reaches the user through Bytewax,
    which may abort with a Rust panic that drops its text: so print it first.
    """
    print(f"coldwake: error: {message}", file=sys.stderr, flush=True)
    raise KafkaUnavailableError(message)
