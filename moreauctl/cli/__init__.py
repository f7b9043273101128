"""The ``moreauctl`` command line (argparse: standard library, no extra dependency).

``moreauctl SUBCOMMAND ...`` and ``python -m moreauctl SUBCOMMAND ...`` are the same program.

Layout: :mod:`.args` holds the argument types and option groups shared by every
sub-command (and by the scripts in ``demos/``); each sub-command is one module with
``add_parser(subparsers)`` and ``run(args) -> exit code``: :mod:`.swingup`, :mod:`.demo`,
:mod:`.sweep`, :mod:`.train`. Imports go one way: ``args`` <- sub-commands <- this package.
"""
from __future__ import annotations

import argparse
import signal
import sys
from typing import Optional, Sequence

from . import demo, sweep, swingup, train

__all__ = ["main", "build_parser", "SUBCOMMANDS"]

#: sub-command modules, in the order of ``moreauctl --help``
SUBCOMMANDS = (swingup, demo, sweep, train)


def build_parser() -> argparse.ArgumentParser:
    """The parser of every sub-command."""
    ap = argparse.ArgumentParser(prog="moreauctl", description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="command", required=True)
    for command in SUBCOMMANDS:
        command.add_parser(sub)
    return ap


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the command line; returns the exit code (2 for bad input)."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as e:
        # Bad settings (or a missing data file) are the user's to fix: one clear line, no
        # traceback.
        print(f"moreauctl: error: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        # A file that could not be written or read (the output paths are checked before
        # any compute; this is what is left: a full disk, a path removed meanwhile).
        print(f"moreauctl: error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        # Ctrl-C, or SIGTERM during a study (studies.executors.Terminated): the pool is
        # stopped, finished cells are on disk; the shell's convention 128 + signal number.
        signum = getattr(e, "signum", signal.SIGINT)
        print(f"moreauctl: {signal.Signals(signum).name}: stopped; the cells a study had "
              "finished are kept under its --out", file=sys.stderr)
        return 128 + signum
