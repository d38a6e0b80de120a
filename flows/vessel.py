"""The vessel dataflow: `python -m bytewax.run flows.vessel`.

Settings come from `COLDWAKE_*` variables (see README); a bad one stops the program
here with one line naming it, before Bytewax starts.
"""

from __future__ import annotations

import sys
from typing import NoReturn

from flows.config import ConfigError, load
from flows.kafka import KafkaUnavailableError, preflight
from flows.pipeline import build
from flows.recovery import prepare_recovery_dir


def _fail(message: str) -> NoReturn:
    print(f"coldwake: {message}", file=sys.stderr, flush=True)
    raise SystemExit(2)


try:
    settings = load()
    preflight(settings)
except ConfigError as exc:
    _fail(f"configuration error: {exc}")
except KafkaUnavailableError as exc:
    _fail(str(exc))
prepare_recovery_dir(sys.argv)
flow = build(settings)
