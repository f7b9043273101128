"""``python -m moreauctl``: the same command line as the ``moreauctl`` script."""
import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
