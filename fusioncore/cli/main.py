"""``fusioncore`` command line: train, evaluate, import, benchmark, explain.

Every command prints one JSON object on stdout (progress bars go to stderr), so runs can be
scripted and their results diffed. A bad input ends with a one-paragraph message on stderr and
exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import sys

from . import benchmark, evaluate, explain, models, train
from .args import emit

#: Each module adds its sub-command(s) with ``add_parser(subparsers)``.
COMMANDS = [models, train, evaluate, benchmark, explain]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fusioncore", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
        if result is not None:  # None: a non-zero rank of a torchrun launch, which prints nothing
            emit(result)
    except (ValueError, OSError, FloatingPointError) as err:
        print(f"fusioncore {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0
