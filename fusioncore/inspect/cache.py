"""What the dashboard caches its results under, and the bounded store for its long results.

Why here and not in the app: a cache key decides whether a user sees a fresh result or another
sample's, so its format is logic to test, and the store is shared by every browser session of a
server, so it must be safe under threads. ``app/state.py`` only binds these to Streamlit's caches.

Keys are plain tuples of the string keys that identify the loaded model and cohort (the app's
``model_key`` / ``data_key``) and what the view adds (row index, presence pattern, method, ...).
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Hashable, Sequence

Pattern = tuple[bool, ...]

#: Where a cohort came from: the first part of its data key (``"demo:<assets folder>"``, ...).
DEMO, FOLDER, UPLOAD = "demo", "folder", "upload"


# -- what identifies the loaded model and cohort ------------------------------------------------


def checkpoint_model_key(path: str | Path, digest: str) -> str:
    """A checkpoint folder's model key: its path and the hash of its weights (a retrained
    checkpoint in the same folder is another model)."""
    return f"{path}:{digest}"


def upload_key(digest: str) -> str:
    """The key of an uploaded checkpoint or upload of samples: the hash of what was uploaded."""
    return f"{UPLOAD}:{digest}"


def uploads_digest(files: Sequence[tuple[str, bytes]]) -> str:
    """One hash of several uploaded ``(name, bytes)`` files: the same files under other names are
    other samples, so names are hashed too (a NUL between name and content keeps them apart)."""
    return hashlib.sha256(b"".join(name.encode() + b"\0" + payload for name, payload in files)).hexdigest()


def demo_data_key(folder: str | Path) -> str:
    """The bundled demo cohort's data key, naming its assets folder (two folders in one process
    are two cohorts)."""
    return f"{DEMO}:{folder}"


def folder_data_key(spec: str, version: str) -> str:
    """A dataset folder's data key: its resolved spec and a version that changes with its files."""
    return f"{FOLDER}:{spec}@{version}"


def data_source(data_key: str) -> str:
    """Where the cohort of ``data_key`` came from: :data:`DEMO`, :data:`FOLDER` or :data:`UPLOAD`."""
    return data_key.split(":", 1)[0]


def scope_key(model_key: str, data_key: str) -> str:
    """A short key of a (model, data) pair: page controls are kept per scope, so a new model or
    dataset starts from defaults instead of inheriting another model's switches."""
    return hashlib.sha1(f"{model_key}\0{data_key}".encode()).hexdigest()[:12]


# -- what the views compute for it ---------------------------------------------------------------


def _pattern(pattern: Sequence[bool]) -> Pattern:
    return tuple(bool(p) for p in pattern)


def explanation_key(model_key: str, data_key: str, index: int, pattern: Sequence[bool]) -> tuple:
    """One sample under one presence pattern: the key of its explanation and of every figure of it."""
    return (model_key, data_key, int(index), _pattern(pattern))


def attributions_key(model_key: str, data_key: str, index: int, pattern: Sequence[bool], method: str) -> tuple:
    """Captum attributions of one sample, pattern and method."""
    return (*explanation_key(model_key, data_key, index, pattern), method)


def cohort_key(view: str, model_key: str, data_key: str) -> tuple:
    """A cohort-wide result (``"cohort"`` predictions, ``"robustness"``) of one model on one cohort."""
    return (view, model_key, data_key)


def sample_trust_key(model_key: str, data_key: str, index: int, pattern: Sequence[bool], attribution: str | None) -> tuple:
    """The trust checks of one sample under one pattern, with the attribution method they check."""
    return ("trust-sample", model_key, data_key, int(index), _pattern(pattern), attribution)


def cohort_trust_key(model_key: str, data_key: str, n_samples: int) -> tuple:
    """The trust checks of the cohort's first ``n_samples`` samples."""
    return ("trust-cohort", model_key, data_key, int(n_samples))


def file_identity(path: Path) -> str:
    """A key of a server file that changes when the file does (path, size, modification time),
    without reading a multi-gigabyte slide to hash it."""
    stat = Path(path).stat()
    return hashlib.sha256(f"{path}|{stat.st_size}|{stat.st_mtime_ns}".encode()).hexdigest()


def slide_run_key(slide_digest: str, model_key: str, options: Any) -> str:
    """The folder name of one slide run: changes with the slide's content, the model and any option
    (``repr`` of the frozen options dataclass names every field)."""
    return hashlib.sha256(repr((slide_digest, model_key, options)).encode()).hexdigest()[:20]


class ResultCache:
    """A bounded least-recently-used store, safe for concurrent sessions.

    Why not a bare ``OrderedDict``: sessions run in threads, and a ``move_to_end`` racing a
    ``popitem`` corrupts the order or raises. Why a lock per key as well: two sessions asking for
    the same cohort at once would otherwise both run minutes of inference; the second waits for
    the first's result instead. The value is computed outside the store's lock, so one long
    computation never blocks a different key. A computation that raises stores nothing (the next
    caller tries again and gets the error itself).
    """

    def __init__(self, max_entries: int) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be >= 1, got {max_entries}")
        self.max_entries = int(max_entries)
        self._store: OrderedDict = OrderedDict()
        self._lock = threading.Lock()
        self._computing: dict[Hashable, threading.Lock] = {}

    def __contains__(self, key: Hashable) -> bool:
        with self._lock:
            return key in self._store

    def __len__(self) -> int:
        with self._lock:
            return len(self._store)

    def _lookup(self, key: Hashable) -> tuple[bool, Any]:
        with self._lock:
            if key in self._store:
                self._store.move_to_end(key)
                return True, self._store[key]
            return False, None

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The stored value of ``key``, or ``compute()`` stored under it (oldest entries dropped)."""
        found, value = self._lookup(key)
        if found:
            return value
        with self._lock:
            key_lock = self._computing.setdefault(key, threading.Lock())
        with key_lock:
            found, value = self._lookup(key)  # computed by the session we waited for
            if found:
                return value
            try:
                value = compute()
                with self._lock:
                    self._store[key] = value
                    self._store.move_to_end(key)
                    while len(self._store) > self.max_entries:
                        self._store.popitem(last=False)
            finally:
                with self._lock:
                    self._computing.pop(key, None)
        return value
