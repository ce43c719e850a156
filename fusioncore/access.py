"""Which server folders a shared dashboard may read: the allowed roots.

A lab runs one dashboard for its members, so a path typed into "Checkpoint folder" or "Dataset
folder" is a path on the *server*, read with the server's rights. This module decides whether
such a path may be opened, before anything under it is opened or even tested for existence.

Configuration (the first that is set wins):

1. the environment variable ``FUSIONCORE_ALLOWED_ROOTS``: folders separated by ``os.pathsep``
   (``:`` on Linux and macOS), e.g. ``/data/lab:/srv/checkpoints``;
2. the file named by ``FUSIONCORE_CONFIG``, else ``$XDG_CONFIG_HOME/fusioncore/config.toml``
   (``~/.config/fusioncore/config.toml``), with::

       [server]
       allowed_roots = ["/data/lab", "/srv/checkpoints"]

Three modes follow (:class:`AccessPolicy`):

* ``restricted``: roots configured; a server path is resolved (``..`` and every symbolic link)
  and accepted only when the result lies inside a root;
* ``local``: no roots and the dashboard listens on a loopback address only: the person at the
  browser is at the server, so any path their account can read is accepted;
* ``shared``: no roots and a non-loopback (or unknown) bind address: server paths are refused
  and only uploads work. A dashboard on a loopback address is shared too when several people
  reach it: behind a reverse proxy (say so with ``FUSIONCORE_SHARED=1``) or with a login
  configured (the dashboard passes ``multi_user``).

A refusal says the same whether or not the path exists, and never names the target of a link,
so it reveals nothing about the server beyond what the user typed.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser, from PyPI
    import tomli as tomllib

ROOTS_ENV = "FUSIONCORE_ALLOWED_ROOTS"
CONFIG_ENV = "FUSIONCORE_CONFIG"
SHARED_ENV = "FUSIONCORE_SHARED"
USERS_ENV = "FUSIONCORE_ALLOWED_USERS"
LOOPBACK_NAMES = ("localhost", "localhost.localdomain", "ip6-localhost")
#: What a path is for, as the dashboard's messages name it.
KINDS = {"checkpoint": "Checkpoint folder", "dataset": "Dataset folder", "slide": "Slide file", "file": "File"}


class AccessError(ValueError):
    """A server path the dashboard may not open; the message says why and what to do."""


def config_file(environ: Mapping[str, str] | None = None) -> Path:
    """The config file that may list allowed roots (it need not exist)."""
    env = os.environ if environ is None else environ
    if env.get(CONFIG_ENV):
        return Path(env[CONFIG_ENV]).expanduser()
    home = Path(env["HOME"]) if env.get("HOME") else Path.home()
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else home / ".config"
    return base / "fusioncore" / "config.toml"


def _list_from_file(path: Path, key: str, example: str) -> tuple[list[str], str] | None:
    """``[server] key`` of the config file (a list of strings), or None when the file or key is absent."""
    try:
        raw = tomllib.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as err:
        raise AccessError(f"{path}: cannot read the fusioncore config file ({err})") from err
    values = raw.get("server", {}).get(key) if isinstance(raw.get("server"), dict) else None
    if values is None:
        return None
    if not isinstance(values, list) or not all(isinstance(r, str) for r in values):
        raise AccessError(f"{path}: [server] {key} must be a list of strings, e.g. {example}")
    return values, str(path)


def _resolve(path: str | Path) -> Path:
    """``path`` made absolute with ``~``, ``..`` and every symbolic link resolved (it need not exist)."""
    return Path(os.path.realpath(Path(path).expanduser()))


def allowed_roots(environ: Mapping[str, str] | None = None) -> tuple[tuple[Path, ...], str]:
    """The configured roots (resolved) and where they came from (``""`` when none are set)."""
    env = os.environ if environ is None else environ
    if env.get(ROOTS_ENV, "").strip():
        entries, source = env[ROOTS_ENV].split(os.pathsep), ROOTS_ENV
    else:
        found = _list_from_file(config_file(env), "allowed_roots", '["/data/lab"]')
        if found is None:
            return (), ""
        entries, source = found
    relative = [e for e in entries if e.strip() and not Path(e.strip()).expanduser().is_absolute()]
    if relative:
        raise AccessError(f"{source}: allowed roots must be absolute folders, not {relative}")
    return tuple(dict.fromkeys(_resolve(e.strip()) for e in entries if e.strip())), source


def allowed_users(environ: Mapping[str, str] | None = None) -> tuple[str, ...]:
    """Who may use a dashboard with a login: e-mail addresses and ``@domain`` entries
    (``FUSIONCORE_ALLOWED_USERS``, comma-separated, or ``[server] allowed_users``); empty: anyone
    the identity provider lets in."""
    env = os.environ if environ is None else environ
    if env.get(USERS_ENV, "").strip():
        entries = env[USERS_ENV].split(",")
    else:
        entries = (_list_from_file(config_file(env), "allowed_users", '["alice@lab.org", "@lab.org"]') or ([], ""))[0]
    return tuple(e.strip().lower() for e in entries if e.strip())


def user_allowed(email: str | None, allowed: tuple[str, ...]) -> bool:
    """Whether ``email`` matches an entry of ``allowed`` (an address, or ``@domain`` for a whole domain)."""
    if not allowed:
        return True
    email = (email or "").strip().lower()
    if "@" not in email:
        return False
    return email in allowed or "@" + email.rsplit("@", 1)[1] in allowed


def is_loopback(address: str | None) -> bool:
    """True for ``127.0.0.1``, ``::1``, ``localhost``...; False for ``0.0.0.0``, a LAN address or None."""
    if not address:
        return False
    host = address.strip().strip("[]").lower()
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True)
class AccessPolicy:
    """Where server paths may be read: ``mode`` is ``restricted``, ``local`` or ``shared``."""

    roots: tuple[Path, ...]
    mode: str
    source: str = ""

    @property
    def server_paths_enabled(self) -> bool:
        return self.mode != "shared"

    def describe(self) -> str:
        """One sentence for the dashboard: which server paths are accepted."""
        if self.mode == "restricted":
            return "Server folders allowed: " + ", ".join(str(r) for r in self.roots)
        if self.mode == "local":
            return "Local dashboard: any folder this account can read."
        return ("Shared dashboard without allowed folders: server paths are off, upload files instead "
                f"(the server's admin can set {ROOTS_ENV}).")

    def resolve(self, path: str | Path, kind: str = "file") -> Path:
        """``path`` resolved (symbolic links included) if this policy lets the dashboard read it.

        Raises :class:`AccessError` naming ``path`` as typed (never its resolved target).
        """
        label = KINDS.get(kind, kind)
        text = str(path).strip()
        if not text:
            raise AccessError(f"{label}: no path given")
        if "\x00" in text:
            raise AccessError(f"{label} {text!r}: not a valid path")
        if self.mode == "shared":
            raise AccessError(f"{label} {text!r}: this dashboard is shared and reads no server paths; upload the "
                              f"files instead (the server's admin can allow folders with {ROOTS_ENV})")
        resolved = _resolve(text)
        if self.mode == "restricted" and not any(resolved == r or resolved.is_relative_to(r) for r in self.roots):
            raise AccessError(f"{label} {text!r} is outside the folders this dashboard may read; "
                              "use a folder under one of them, or upload the files instead")
        return resolved


def access_policy(bind_address: str | None = None, environ: Mapping[str, str] | None = None, *,
                  multi_user: bool = False) -> AccessPolicy:
    """The policy for a dashboard listening on ``bind_address`` (None = all interfaces).

    ``multi_user``: the dashboard knows several people use it (a login is configured).
    """
    env = os.environ if environ is None else environ
    roots, source = allowed_roots(env)
    if roots:
        return AccessPolicy(roots, "restricted", source)
    shared = multi_user or env.get(SHARED_ENV, "").strip().lower() in ("1", "true", "yes", "on")
    return AccessPolicy((), "local" if is_loopback(bind_address) and not shared else "shared")


def server_paths_enabled(bind_address: str | None = None, environ: Mapping[str, str] | None = None, *,
                         multi_user: bool = False) -> bool:
    """Whether the dashboard may offer server-path inputs at all (False in ``shared`` mode)."""
    return access_policy(bind_address, environ, multi_user=multi_user).server_paths_enabled


def resolve_allowed(path: str | Path, kind: str = "file", *, bind_address: str | None = None,
                    environ: Mapping[str, str] | None = None, multi_user: bool = False) -> Path:
    """``path`` resolved and checked against the allowed roots (see :meth:`AccessPolicy.resolve`)."""
    return access_policy(bind_address, environ, multi_user=multi_user).resolve(path, kind)


def confine(path: str | Path, folder: Path, where: str, *, base: Path | None = None) -> Path:
    """``path`` (relative to ``base``, default ``folder``, or absolute) resolved; refused unless it
    stays inside ``folder``.

    For the files a dataset folder's manifest or image table names: ``where`` names the entry
    (e.g. ``fusioncore.json: labels``). ``folder`` must already be resolved.
    """
    raw = Path(str(path).strip())
    resolved = _resolve(raw if raw.is_absolute() else (base or folder) / raw)
    if not resolved.is_relative_to(folder):
        raise AccessError(f"{where}: {str(path)!r} points outside the dataset folder; a dataset loaded in the "
                          "dashboard may only name files inside its own folder")
    return resolved
