"""Export a figure with its data and provenance: PNG, SVG, PDF, HTML, CSV and a JSON record.

Static images go through plotly + kaleido (a headless Chrome/Chromium) in a warm child process
— started once, reused for every export, killed after a timeout, because kaleido is known to
hang in some setups; when no browser is found, the child fails or the timeout passes, the same
figure is drawn by a browser-free matplotlib renderer.
Which renderer produced the files (and why the fallback was taken) is recorded in the result
and in the provenance JSON, so an exported figure always says how it was made.
"""

from __future__ import annotations

import atexit
import base64
import datetime as _dt
import importlib.metadata as _md
import json
import os
import platform
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import pandas as pd
import plotly.graph_objects as go

STATIC_FORMATS = ("png", "svg", "pdf")
ALL_FORMATS = ("png", "svg", "pdf", "html", "csv", "json")
MIME_TYPES = {
    "png": "image/png",
    "svg": "image/svg+xml",
    "pdf": "application/pdf",
    "html": "text/html",
    "csv": "text/csv",
    "json": "application/json",
}
RENDERER_ENV = "FUSIONCORE_STATIC_RENDERER"  # "auto" (default), "kaleido" or "matplotlib"
PACKAGES = ("fusioncore", "torch", "plotly", "kaleido", "captum", "numpy", "pandas", "matplotlib")


@dataclass
class ExportResult:
    """What :func:`export_figure` wrote: format -> path, the static renderer used and why."""

    out_dir: Path
    stem: str
    paths: dict[str, Path]
    renderer: str | None  # "kaleido", "matplotlib", or None when no static format was asked for
    fallback_reason: str | None
    provenance: dict[str, Any]


@dataclass
class ExportBytes:
    """In-memory export (for download buttons): format -> bytes, file names and MIME types."""

    stem: str
    files: dict[str, bytes]
    filenames: dict[str, str]
    mime_types: dict[str, str]
    renderer: str | None
    fallback_reason: str | None
    provenance: dict[str, Any] = field(default_factory=dict)


# -- names and provenance -------------------------------------------------------------------


def _sanitise(part: Any) -> str:
    text = re.sub(r"[^A-Za-z0-9._-]+", "-", str(part)).strip("-._")
    return text or "none"


def make_export_stem(view: str, model_name: str | None = None, sample_id: Any = None, *more: Any) -> str:
    """A file-system-safe stem naming view, model, sample and whatever else tells two figures
    apart (``more``: class, switched-off modalities), e.g. ``gates__mmdynamics__S-12__without-mrna``."""
    parts = [_sanitise(view)]
    if model_name:
        parts.append(_sanitise(model_name))
    if sample_id is not None and str(sample_id) != "":
        parts.append(_sanitise(sample_id))
    parts.extend(_sanitise(p) for p in more if p is not None and str(p) != "")
    return "__".join(parts)[:200]


def package_versions(packages: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    """Installed versions of the packages a figure depends on (None when not installed), plus python."""
    out: dict[str, str | None] = {}
    for name in packages:
        try:
            out[name] = _md.version(name)
        except _md.PackageNotFoundError:
            out[name] = None
    out["python"] = platform.python_version()
    return out


def provenance(
    *,
    view: str,
    method: str | None = None,
    checkpoint: str | Path | None = None,
    checkpoint_sha256: str | None = None,
    config: Any = None,
    seed: int | None = None,
    sample_id: Any = None,
    active_modalities: Sequence[str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The JSON record saved beside an exported figure.

    ``checkpoint`` (a checkpoint folder) is hashed with
    :func:`fusioncore.checkpoint.checkpoint_hash`; pass ``checkpoint_sha256`` instead when the
    hash is already known (an uploaded checkpoint). ``config`` may be a dataclass or a dict.
    """
    from ..config import to_jsonable

    digest = checkpoint_sha256
    if checkpoint is not None and digest is None:
        from ..checkpoint import checkpoint_hash

        try:
            digest = checkpoint_hash(checkpoint)
        except OSError as err:
            raise ValueError(f"checkpoint {checkpoint}: cannot hash config.json + model.safetensors ({err})") from err
    return {
        "view": view,
        "method": method,
        "checkpoint": None if checkpoint is None else str(checkpoint),
        "checkpoint_sha256": digest,
        "config": to_jsonable(config) if config is not None else None,
        "seed": seed,
        "sample_id": None if sample_id is None else str(sample_id),
        "active_modalities": None if active_modalities is None else list(active_modalities),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "versions": package_versions(),
        "extra": to_jsonable(dict(extra)) if extra else {},
    }


# -- static rendering -----------------------------------------------------------------------


def find_browser() -> str | None:
    """Path of a Chrome/Chromium kaleido can drive (``BROWSER_PATH`` first), or None."""
    env = os.environ.get("BROWSER_PATH")
    if env and os.access(env, os.X_OK):
        return env
    try:
        from choreographer.browsers.chromium import Chromium

        found = Chromium.find_browser(skip_local=False)
        if found:
            return str(found)
    except Exception:  # noqa: BLE001 - any failure to look just means "no browser"
        pass
    for exe in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome"):
        path = shutil.which(exe)
        if path:
            return path
    return None


def _worker_command() -> list[str]:
    """The warm worker process that runs kaleido (a module attribute so tests can swap it)."""
    return [sys.executable, "-m", "fusioncore.viz._kaleido_worker"]


class StaticExportError(RuntimeError):
    """kaleido could not render (no browser, a crash, or a timeout)."""


class _WarmWorker:
    """The kaleido worker kept running between exports, one per Python process.

    Starting Chromium costs seconds per export; the worker starts it once and renders every
    later figure in a fraction of a second. A job that passes its timeout kills the worker's
    process session (the browser goes too) and the next export starts a fresh one. The worker
    exits by itself when this process dies (its stdin closes).
    """

    def __init__(self) -> None:
        self.proc: subprocess.Popen | None = None
        self.key: tuple | None = None
        self.lock = threading.Lock()
        self._buffer = b""
        self._stderr = None

    def _start(self, command: list[str], browser: str, deadline: float) -> None:
        self._stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._stderr,
                                     env=dict(os.environ, BROWSER_PATH=browser), start_new_session=True)
        self.key, self._buffer = (tuple(command), browser), b""
        if not self._read(deadline).get("ready"):
            raise ValueError("the worker did not report ready")

    def _read(self, deadline: float) -> dict:
        """The next JSON line from the worker, or TimeoutError / EOFError."""
        out = self.proc.stdout
        while b"\n" not in self._buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([out], [], [], remaining)[0]:
                raise TimeoutError
            chunk = os.read(out.fileno(), 1 << 20)
            if not chunk:
                raise EOFError
            self._buffer += chunk
        line, _, self._buffer = self._buffer.partition(b"\n")
        return json.loads(line)

    def _failure(self) -> str:
        code = self.proc.poll() if self.proc is not None else None
        if code is None and self.proc is not None:
            try:
                code = self.proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                code = "running"
        tail = ""
        if self._stderr is not None:
            self._stderr.seek(0)
            tail = " | ".join(self._stderr.read().decode(errors="replace").strip().splitlines()[-3:])
        return f"kaleido failed (exit {code}): {tail}"

    def stop(self) -> None:
        if self.proc is not None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # its own session: the browser goes too
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait()
            for stream in (self.proc.stdin, self.proc.stdout):
                stream.close()
        if self._stderr is not None:
            self._stderr.close()
        self.proc, self.key, self._stderr = None, None, None

    def render(self, job: dict, timeout_s: float, browser: str) -> dict[str, bytes]:
        """Run one job (see ``_kaleido_worker``) within ``timeout_s``, browser start included."""
        with self.lock:
            deadline = time.monotonic() + timeout_s
            command = _worker_command()
            try:
                if self.proc is None or self.proc.poll() is not None or self.key != (tuple(command), browser):
                    self.stop()
                    self._start(command, browser, deadline)
                self.proc.stdin.write((json.dumps(job) + "\n").encode())
                self.proc.stdin.flush()
                reply = self._read(deadline)
            except TimeoutError:
                self.stop()
                raise StaticExportError(f"kaleido did not finish within {timeout_s:g} s") from None
            except (EOFError, OSError, ValueError):
                reason = self._failure()
                self.stop()
                raise StaticExportError(reason) from None
        if not reply.get("ok"):
            raise StaticExportError(f"kaleido failed: {reply.get('error')}")
        files = {fmt: base64.b64decode(data) for fmt, data in reply.get("files", {}).items()}
        for fmt in job["formats"]:
            if not files.get(fmt):
                raise StaticExportError(f"kaleido wrote no {fmt} output")
        return files


_WORKER = _WarmWorker()
atexit.register(_WORKER.stop)

#: Room (px) kept free around a static figure: Chrome's PDF printer cuts the last few pixels of
#: the page, which took the descenders of the x-axis title ("true TCP", "class") with them.
EXPORT_PAD = 24


def export_ready(fig: go.Figure) -> go.Figure:
    """A copy of ``fig`` with :data:`EXPORT_PAD` more margin on every side, so axis titles,
    tick labels and colour-bar titles never touch the edge of a PNG, SVG or PDF."""
    out = go.Figure(fig)
    m = out.layout.margin
    out.update_layout(margin=dict(l=(m.l if m.l is not None else 80) + EXPORT_PAD, r=(m.r if m.r is not None else 80) + EXPORT_PAD,
                                  t=(m.t if m.t is not None else 100) + EXPORT_PAD // 2,
                                  b=(m.b if m.b is not None else 80) + EXPORT_PAD))
    if out.layout.width is not None:
        out.update_layout(width=out.layout.width + 2 * EXPORT_PAD)
    if out.layout.height is not None:
        out.update_layout(height=out.layout.height + EXPORT_PAD + EXPORT_PAD // 2)
    return out


def _render_kaleido(fig: go.Figure, formats: Sequence[str], timeout_s: float, browser: str,
                    width: int | None, height: int | None, scale: float | None) -> dict[str, bytes]:
    """Render ``formats`` in the warm worker; kill it (and its browser) after ``timeout_s``."""
    job = {"figure": json.loads(export_ready(fig).to_json()), "formats": list(formats),
           "width": width, "height": height, "scale": scale}
    return _WORKER.render(job, timeout_s, browser)


def render_static(fig: go.Figure, formats: Sequence[str] = STATIC_FORMATS, *, timeout_s: float = 30,
                  renderer: str | None = None, width: int | None = None, height: int | None = None,
                  scale: float | None = None) -> tuple[dict[str, bytes], str, str | None]:
    """Static bytes of ``fig`` per format, the renderer used and the reason for a fallback.

    ``renderer`` (or ``$FUSIONCORE_STATIC_RENDERER``): ``"auto"`` tries kaleido then falls back
    to matplotlib; ``"kaleido"`` raises :class:`StaticExportError` instead of falling back;
    ``"matplotlib"`` skips the browser altogether.
    """
    from ._mpl_render import render_matplotlib

    choice = (renderer or os.environ.get(RENDERER_ENV) or "auto").lower()
    if choice not in ("auto", "kaleido", "matplotlib"):
        raise ValueError(f"renderer: expected auto, kaleido or matplotlib, got {choice!r}")
    formats = list(formats)
    if not formats:
        return {}, choice, None
    reason = None
    if choice == "matplotlib":
        reason = "matplotlib renderer requested"
    else:
        browser = find_browser()
        if browser is None:
            reason = "no Chrome/Chromium found for kaleido"
        else:
            try:
                return _render_kaleido(fig, formats, timeout_s, browser, width, height, scale), "kaleido", None
            except (StaticExportError, OSError) as err:
                reason = str(err)
        if choice == "kaleido":
            raise StaticExportError(reason)
    return {fmt: render_matplotlib(export_ready(fig), fmt) for fmt in formats}, "matplotlib", reason


# -- export ---------------------------------------------------------------------------------


def _check_formats(formats: Iterable[str]) -> list[str]:
    formats = [str(f).lower().lstrip(".") for f in formats]
    unknown = sorted(set(formats) - set(ALL_FORMATS))
    if unknown:
        raise ValueError(f"formats: unknown {unknown}; choose from {list(ALL_FORMATS)}")
    return list(dict.fromkeys(formats))


def figure_bytes(
    fig: go.Figure,
    data: pd.DataFrame | None,
    provenance: Mapping[str, Any] | None,
    stem: str,
    formats: Iterable[str] = ALL_FORMATS,
    *,
    timeout_s: float = 30,
    renderer: str | None = None,
    html_plotlyjs: bool | str = True,
) -> ExportBytes:
    """Every requested format as bytes, ready for download buttons.

    ``csv`` needs ``data`` (the builder's tidy frame); ``json`` is the provenance record with the
    renderer and file names added. ``html_plotlyjs``: True embeds plotly.js (works offline),
    ``"cdn"`` links it (small files).
    """
    if not isinstance(fig, go.Figure):
        raise ValueError(f"fig: expected a plotly.graph_objects.Figure, got {type(fig).__name__}")
    formats = _check_formats(formats)
    stem = _sanitise(stem)
    if "csv" in formats and data is None:
        raise ValueError("formats include csv but no data frame was given")
    static = [f for f in formats if f in STATIC_FORMATS]
    images, used, reason = render_static(fig, static, timeout_s=timeout_s, renderer=renderer) if static else ({}, None, None)
    files: dict[str, bytes] = dict(images)
    if "html" in formats:
        files["html"] = fig.to_html(include_plotlyjs=html_plotlyjs, full_html=True).encode()
    if "csv" in formats:
        files["csv"] = data.to_csv(index=False).encode()
    filenames = {fmt: f"{stem}.{fmt}" for fmt in formats}
    record = dict(provenance or {})
    record.update(static_renderer=used, static_fallback_reason=reason, files=filenames)
    if "json" in formats:
        files["json"] = (json.dumps(record, indent=2, default=str) + "\n").encode()
    files = {fmt: files[fmt] for fmt in formats}
    return ExportBytes(stem=stem, files=files, filenames=filenames, mime_types={f: MIME_TYPES[f] for f in formats},
                       renderer=used, fallback_reason=reason, provenance=record)


def export_figure(
    fig: go.Figure,
    data: pd.DataFrame | None,
    provenance: Mapping[str, Any] | None,
    out_dir: str | Path,
    stem: str,
    formats: Iterable[str] = ALL_FORMATS,
    timeout_s: float = 30,
    *,
    renderer: str | None = None,
    html_plotlyjs: bool | str = True,
) -> ExportResult:
    """Write ``out_dir/<stem>.<format>`` for each format (see :func:`figure_bytes`)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    result = figure_bytes(fig, data, provenance, stem, formats, timeout_s=timeout_s, renderer=renderer,
                          html_plotlyjs=html_plotlyjs)
    paths = {}
    for fmt, payload in result.files.items():
        path = out / result.filenames[fmt]
        path.write_bytes(payload)
        paths[fmt] = path
    return ExportResult(out_dir=out, stem=result.stem, paths=paths, renderer=result.renderer,
                        fallback_reason=result.fallback_reason, provenance=result.provenance)
