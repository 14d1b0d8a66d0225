"""``python -m hypergen_ws publish|stats ...``: see :mod:`hypergen_ws.cli`."""
import sys

from hypergen_ws.cli import main

if __name__ == "__main__":
    sys.exit(main())
