"""Folders replaced atomically: written beside their place, fsynced, then swapped in by rename.

A checkpoint is two files that only make sense together (``config.json`` describes the
tensors of ``model.safetensors``). Rewriting them in place lets a kill or a full disk leave
the new config beside the old weights -- a folder that loads, silently wrong. Here the new
files go into a temporary folder in the same parent (so a rename, not a copy, puts it in
place), each is fsynced, and the folder is swapped in:

* with Linux's ``renameat2(RENAME_EXCHANGE)`` the old and new folders trade names in one
  step, so the path always holds exactly the old or exactly the new folder;
* where the file system lacks it, the old folder is renamed aside and the new one renamed
  into place; between the two renames the path is absent (nothing that loads), and the next
  write -- or ``fusioncore train`` claiming the folder -- renames the old one back.

Entries of the old folder that the write does not replace (``training_state/`` inside a
``train --out`` folder, files a user put there) are moved into the new folder, then the old
one is removed. Leftover folders are named ``.<name>.tmp-<host>-<pid>-<random>`` and
``.<name>.old-<host>-<pid>-<random>``; :func:`recover_interrupted` finishes the work of a
writer that died (its pid is gone on this host) and leaves live writers alone.
"""

from __future__ import annotations

import ctypes
import errno
import os
import re
import shutil
import socket
import stat
import tempfile
from pathlib import Path
from typing import Iterable

#: Use ``renameat2(RENAME_EXCHANGE)`` when the C library and file system have it. The
#: atomic-save test turns it off to exercise the two-rename fallback as well.
USE_EXCHANGE = True
_AT_FDCWD = -100
_RENAME_EXCHANGE = 2
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV}
_LEFTOVER = re.compile(r"^(?P<kind>tmp|old)-(?P<host>.+)-(?P<pid>\d+)-(?P<rand>[A-Za-z0-9_]+)$")


def write_folder(path: str | Path, files: dict[str, bytes], *, replaced: Iterable[str] = ()) -> Path:
    """Make folder ``path`` hold ``files`` (name -> bytes), atomically; return the folder.

    ``replaced`` names further entries of an existing folder that must not survive the write
    (a stale ``metrics.json``); every other entry is kept. File modes are ``0666 & ~umask``;
    a new folder gets ``0777 & ~umask``, a replaced one keeps its mode.
    """
    folder = Path(os.path.abspath(path))  # "." or "a/.." has no name to put a temporary folder beside
    if folder.is_symlink():
        folder = folder.resolve()  # replace what the link points to, keep the link
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder}: exists and is not a folder")
    drop = set(files) | set(replaced)
    folder.parent.mkdir(parents=True, exist_ok=True)
    recover_interrupted(folder, drop)
    mode = stat.S_IMODE(folder.stat().st_mode) if folder.is_dir() else 0o777 & ~current_umask()
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-{_host()}-{os.getpid()}-", dir=folder.parent))
    swapped = False
    try:
        os.chmod(tmp, mode)
        for name, data in files.items():
            _write_synced(tmp / name, data)
        _fsync_dir(tmp)
        cwd = _cwd_inside(folder)
        old = _swap(tmp, folder)
        swapped = True
        if old is not None:
            _carry(old, folder, drop)
            shutil.rmtree(old)
        if cwd is not None:  # the process stood in the old folder: follow its path to the new one
            os.chdir(cwd)
    finally:
        if not swapped:
            shutil.rmtree(tmp, ignore_errors=True)
    return Path(path)


def _cwd_inside(folder: Path) -> str | None:
    """The working directory when it is ``folder`` or below it (``model.save(".")``), else None."""
    try:
        cwd = os.getcwd()
    except OSError:
        return None
    return cwd if cwd == str(folder) or cwd.startswith(str(folder) + os.sep) else None


def _write_synced(path: Path, data: bytes) -> None:
    """Write ``data`` to a new file and fsync it (mode ``0666 & ~umask`` from ``os.open``)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    """Persist a folder's entries (new names after a rename). Some file systems refuse; that only
    weakens durability after a power cut, never atomicity, so it is not an error."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _swap(tmp: Path, folder: Path) -> Path | None:
    """Put ``tmp`` at ``folder``; return where the old folder now is (None: there was none)."""
    if not folder.exists():
        os.rename(tmp, folder)
        _fsync_dir(folder.parent)
        return None
    if USE_EXCHANGE and _exchange(tmp, folder):
        _fsync_dir(folder.parent)
        return tmp  # the old folder now carries the temporary name
    aside = tmp.with_name(f".{folder.name}.old-{tmp.name[len(folder.name) + 6:]}")  # same host-pid-random
    os.rename(folder, aside)
    os.rename(tmp, folder)
    _fsync_dir(folder.parent)
    return aside


def _exchange(a: Path, b: Path) -> bool:
    """Swap the names ``a`` and ``b`` in one step; False where the system cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError):
        return False
    rc = renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in _UNSUPPORTED:
        return False
    raise OSError(err, os.strerror(err), str(b))


def _carry(old: Path, folder: Path, drop: set[str]) -> None:
    """Move the entries of ``old`` that the write did not replace into ``folder``."""
    for entry in sorted(os.listdir(old)):
        if entry in drop or (folder / entry).exists():
            continue
        os.rename(old / entry, folder / entry)


def recover_interrupted(folder: str | Path, replaced: Iterable[str]) -> list[str]:
    """Finish the writes into ``folder`` of writers that died; return what was done (one line each).

    An old folder renamed aside comes back when ``folder`` is missing; entries not in
    ``replaced`` (a ``training_state/``) move from leftovers into ``folder``; the leftovers are
    then removed. Leftovers of live processes, or of other hosts, are left alone.
    """
    folder = Path(os.path.abspath(folder))
    drop, notes = set(replaced), []
    for kind, leftover in _leftovers(folder):
        if not folder.exists() and kind == "old":
            os.rename(leftover, folder)
            notes.append(f"{folder}: restored the previous folder from {leftover.name} (a save had been interrupted)")
            continue
        if folder.is_dir():
            _carry(leftover, folder, drop)
        shutil.rmtree(leftover, ignore_errors=True)
        notes.append(f"{folder}: removed {leftover.name}, left by an interrupted save")
    return notes


def _leftovers(folder: Path) -> list[tuple[str, Path]]:
    """(kind, path) of the leftovers of dead writers beside ``folder``, ``old`` ones first."""
    prefix = f".{folder.name}."
    try:
        names = os.listdir(folder.parent)
    except OSError:
        return []
    found = []
    for name in names:
        match = _LEFTOVER.match(name[len(prefix):]) if name.startswith(prefix) else None
        if match and match["host"] == _host() and not pid_alive(int(match["pid"])):
            found.append((match["kind"], folder.parent / name))
    return sorted(found, key=lambda item: (item[0] != "old", item[1].name))


def leftover_hint(folder: str | Path) -> str:
    """A sentence for a missing ``folder`` beside which a save's leftovers lie ('' when none)."""
    folder = Path(os.path.abspath(folder))
    prefix = f".{folder.name}.old-"
    try:
        names = sorted(n for n in os.listdir(folder.parent) if n.startswith(prefix))
    except OSError:
        return ""
    if not names:
        return ""
    return (f"; a save into it was interrupted and the previous version is in {folder.parent / names[0]} "
            "(saving again, or running fusioncore train with this --out, puts it back)")


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists on this host (one of another user counts)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_umask() -> int:
    """The process umask, read without changing it where Linux exposes it."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)  # no /proc: read it by setting it, and set it straight back
    os.umask(mask)
    return mask


def _host() -> str:
    """This machine's name as it may appear in a file name (no path separator)."""
    return socket.gethostname().replace("/", "_") or "localhost"
