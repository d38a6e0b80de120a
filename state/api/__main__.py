"""`python -m state.api`: see `state.api.server`."""

import sys

from state.api.server import main

if __name__ == "__main__":
    sys.exit(main())
