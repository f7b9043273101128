"""``python -m moreauctl.cli``: the command line, as before it was a package (scripts and
tests call it so); ``python -m moreauctl`` is the short form."""
import sys

from . import main

if __name__ == "__main__":
    sys.exit(main())
