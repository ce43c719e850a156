"""The ``--out`` folder of ``train`` / ``import``: checked and locked before any work starts.

Hours of training must not end in "Permission denied", overwrite a folder of someone's files,
silently replace a checkpoint, or race a second run writing into the same folder. So before
the data is even read, :func:`claim_output`:

* refuses a path that exists and is not a folder, or a folder that holds something other than
  a checkpoint (``config.json`` / ``model.safetensors`` / ``metrics.json``) or the resumable
  state of one (``training_state/``);
* refuses to replace an existing checkpoint unless asked (``--force``; ``--resume`` continues
  the run whose checkpoint it is);
* takes a lock file *beside* the folder (``.<name>.lock`` in the parent: the folder itself is
  swapped by rename when the checkpoint is written, :mod:`fusioncore.atomic_folder`). Creating
  it proves the parent is writable. It records who holds it (pid, host, user, command, start
  time); a lock whose process is gone on this host is stale and taken over, one held by a live
  process -- or by another host, which cannot be checked -- is refused, naming the holder.

Under torchrun only rank 0 writes, so only rank 0 claims the folder.
"""

from __future__ import annotations

import functools
import getpass
import json
import os
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from .atomic_folder import pid_alive, recover_interrupted
from .checkpoint import CHECKPOINT_FILES

#: What a ``train --out`` folder may hold besides the checkpoint files (the resumable state).
STATE_ENTRIES = ("training_state",)


class OutputError(ValueError):
    """An ``--out`` that cannot be written; the message names the path and what to do."""


def check_output_folder(out: Path, *, force: bool, resume: bool, option: str = "--out") -> None:
    """Refuse ``out`` when writing a checkpoint there would destroy something (the module doc)."""
    if out.exists() and not out.is_dir():
        raise OutputError(f"{option} {out}: exists and is not a folder (a checkpoint is a folder); "
                          "choose a new folder name")
    if not out.is_dir():
        return
    try:
        entries = sorted(os.listdir(out))
    except OSError as err:
        raise OutputError(f"{option} {out}: cannot be read ({err.strerror or err})") from err
    foreign = [e for e in entries if e not in CHECKPOINT_FILES and e not in STATE_ENTRIES]
    holds_checkpoint = any(e in CHECKPOINT_FILES for e in entries)
    if foreign and not holds_checkpoint:
        shown = ", ".join(foreign[:5]) + (", ..." if len(foreign) > 5 else "")
        raise OutputError(f"{option} {out}: exists and is not a checkpoint folder (it holds {shown}); "
                          "choose a new or empty folder, nothing there is replaced")
    if holds_checkpoint and not (force or resume):
        raise OutputError(f"{option} {out}: holds a checkpoint already; pass --force to replace it, "
                          "or choose another folder")


def _check_writable(folder: Path, out: Path, option: str) -> None:
    """Create ``folder`` if needed and check it can be written (before hours of training)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError) as err:
        blocker = next((p for p in (folder, *folder.parents) if p.exists() and not p.is_dir()), folder)
        raise OutputError(f"{option} {out}: {blocker} is a file, not a folder; choose another path") from err
    except OSError as err:
        raise OutputError(f"{option} {out}: cannot create the folder {folder} ({err.strerror or err})") from err
    if not os.access(folder, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {out}: permission denied, cannot write in {folder}; "
                          "choose a folder you can write to")


def _lock_record() -> dict:
    return {"pid": os.getpid(), "host": socket.gethostname(), "user": _user(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "command": " ".join(sys.argv)[:500]}


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid()) if hasattr(os, "getuid") else "?"


def _read_lock(lock: Path) -> dict | None:
    """The record in ``lock``; None when it vanished; {} when it cannot be parsed."""
    try:
        record = json.loads(lock.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def _is_stale(record: dict) -> bool:
    """A lock whose process is gone on this host (or that no live process can have written)."""
    pid = record.get("pid")
    if not isinstance(pid, int):
        return True  # unreadable: its writer died between creating and filling it
    return record.get("host") == socket.gethostname() and not pid_alive(pid)


def _create_lock(lock: Path, text: str) -> bool:
    """Create ``lock`` holding ``text`` in one step (link of a filled file); False if it exists."""
    tmp = lock.with_name(f"{lock.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    try:
        os.link(tmp, lock)
        return True
    except FileExistsError:
        return False
    finally:
        tmp.unlink(missing_ok=True)


def acquire_lock(lock: Path, out: Path, option: str = "--out") -> None:
    """Take ``lock`` for ``out``, replacing a stale one; refuse, naming the holder, otherwise."""
    text = json.dumps(_lock_record())
    for _ in range(3):  # a stale lock removed by a concurrent claimant: try again
        try:
            if _create_lock(lock, text):
                return
        except OSError as err:
            raise OutputError(f"{option} {out}: cannot write in {lock.parent} ({err.strerror or err}); "
                              "choose a folder you can write to") from err
        record = _read_lock(lock)
        if record is None:
            continue
        if not _is_stale(record):
            raise OutputError(
                f"{option} {out}: another training is writing into this folder (pid {record.get('pid')} on "
                f"{record.get('host')}, user {record.get('user')}, since {record.get('started')}; lock file "
                f"{lock}). Wait for it to finish or choose another folder; remove the lock file only if "
                "that process is gone")
        print(f"note: {option} {out}: taking over the stale lock {lock} (pid {record.get('pid')} on "
              f"{record.get('host')} has ended)", file=sys.stderr)
        try:  # rename first: of two claimants of a stale lock only one succeeds
            os.rename(lock, lock.with_name(f"{lock.name}.stale-{os.getpid()}"))
            lock.with_name(f"{lock.name}.stale-{os.getpid()}").unlink()
        except FileNotFoundError:
            pass
    raise OutputError(f"{option} {out}: could not take the lock file {lock}; try again")


def release_lock(lock: Path) -> None:
    """Remove ``lock`` if this process still holds it."""
    record = _read_lock(lock)
    if record and record.get("pid") == os.getpid() and record.get("host") == socket.gethostname():
        lock.unlink(missing_ok=True)


def lock_path(out: Path) -> Path:
    """The lock file of output folder ``out``: ``.<name>.lock`` beside it."""
    return out.parent / f".{out.name}.lock"


@contextmanager
def claim_output(out: str | Path, *, force: bool = False, resume: bool = False,
                 option: str = "--out") -> Iterator[Path]:
    """Check ``out`` (the module doc), lock it for this process while the block runs; yield it."""
    out = Path(out)
    if _rank() != 0:
        yield out
        return
    _check_writable(Path(os.path.abspath(out)).parent, out, option)
    for note in recover_interrupted(out, CHECKPOINT_FILES):
        print(f"note: {note}", file=sys.stderr)
    check_output_folder(out, force=force, resume=resume, option=option)
    if out.is_dir() and not os.access(out, os.W_OK | os.X_OK):
        raise OutputError(f"{option} {out}: permission denied, cannot write in this folder")
    lock = lock_path(Path(os.path.abspath(out)))
    acquire_lock(lock, out, option)
    try:
        yield out
    finally:
        release_lock(lock)


def _rank() -> int:
    """This process's torchrun rank (0 without torchrun); a malformed value counts as rank 0."""
    try:
        return int(os.environ.get("RANK", "0"))
    except ValueError:
        return 0


def guarded_output(command: Callable) -> Callable:
    """Wrap a CLI command whose ``args.out`` is a checkpoint folder so it runs under :func:`claim_output`
    (``args.force``, and ``args.resume`` where the command has it)."""

    @functools.wraps(command)
    def run(args):
        with claim_output(args.out, force=getattr(args, "force", False), resume=getattr(args, "resume", False)):
            return command(args)

    return run


__all__ = ["OutputError", "acquire_lock", "check_output_folder", "claim_output", "guarded_output",
           "lock_path", "release_lock"]
