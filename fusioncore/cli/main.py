"""``fusioncore`` command line: train, evaluate, import, benchmark, explain, dashboard.

Every command prints one JSON object on stdout (progress bars go to stderr), so runs can be
scripted and their results diffed. :func:`main` is the command line's exception boundary: a bad
input ends with a one-paragraph message on stderr and exit status 2; any other failure ends
the same way, saying what failed and where its traceback was written
(:mod:`fusioncore.errorlog`: ``~/.local/state/fusioncore/cli.log`` by default); Ctrl-C ends
with exit status 130. A traceback never reaches the terminal.
"""

from __future__ import annotations

import argparse
import sys

from ..errorlog import describe_os_error, log_exception, log_path
from . import benchmark, dashboard, evaluate, explain, models, train
from .args import emit

#: Each module adds its sub-command(s) with ``add_parser(subparsers)``.
COMMANDS = [models, train, evaluate, benchmark, explain, dashboard]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fusioncore", description=__doc__.splitlines()[0],
        epilog=f"Errors are explained on stderr (exit status 2); their tracebacks go to {log_path('cli')} "
               "($FUSIONCORE_LOG_DIR moves it).")
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        module.add_parser(sub)
    return parser


def _failure_message(err: BaseException, command: str) -> str:
    """What the user reads for ``err``: the library's own message for a bad input, else what
    failed, the log file holding its traceback, and what to do."""
    where = f"fusioncore {command}"
    reference, path = log_exception(err, "cli", where)
    if isinstance(err, OSError):
        return f"{where}: error: {describe_os_error(err)}"
    if isinstance(err, (ValueError, FloatingPointError)):
        return f"{where}: error: {err}"
    if isinstance(err, MemoryError):
        return f"{where}: error: out of memory; use a smaller batch size, fewer features or a machine with more memory"
    first = (str(err).strip().splitlines() or [""])[0][:300]
    logged = f"the traceback is in {path} (reference {reference})" if path else "the traceback could not be logged"
    return (f"{where}: internal error ({type(err).__name__}: {first}); {logged}. Check the inputs named in the "
            "command, and report it with the log if it persists")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
        if result is not None:  # None: a non-zero rank of a torchrun launch, which prints nothing
            emit(result)
    except KeyboardInterrupt as err:  # its message, when there is one, says what was kept (train: how to resume)
        print(f"fusioncore {args.command}: interrupted" + (f"; {err}" if str(err) else ""), file=sys.stderr)
        return 130
    except Exception as err:  # the boundary: every failure becomes a message (the module doc)
        print(_failure_message(err, args.command), file=sys.stderr)
        return 2
    return 0
