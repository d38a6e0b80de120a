"""`python -m tests.support.linger ARGS`: `python -m bytewax.run ARGS`, then the process
stays alive until its stdin closes, so that a test can scrape the flow's /metrics
after the run ended (its metrics server is a thread of this process).

Prints `LINGER_MARK exit-code` on stderr once the flow has returned.
"""

from __future__ import annotations

import runpy
import sys
from typing import Final

LINGER_MARK: Final = "coldwake-test: flow returned"


def main() -> int:
    """Run the flow as `python -m bytewax.run` would; wait for stdin to close."""
    code: int | str | None = 0
    try:
        # Sets sys.argv[0] to bytewax/run.py, as `python -m bytewax.run` does.
        runpy.run_module("bytewax.run", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        code = exc.code
    print(f"{LINGER_MARK} {code}", file=sys.stderr, flush=True)
    sys.stdin.read()
    return code if isinstance(code, int) else 1


if __name__ == "__main__":
    sys.exit(main())
