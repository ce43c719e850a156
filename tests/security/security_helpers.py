"""Builders of hostile inputs for the security tests: edited checkpoints, crafted zips, huge PNGs."""

from __future__ import annotations

import io
import json
import shutil
import struct
import zipfile
import zlib
from pathlib import Path
from typing import Callable

import torch
from safetensors.torch import load_file, save_file

import fusioncore as fc
from conftest import make_tabular_dataset


def small_checkpoint(folder: Path) -> Path:
    """An untrained 3-modality MM-dynamics checkpoint (a few kB) with min-max statistics."""
    from fusioncore.training import fit

    data = make_tabular_dataset(n=24)
    torch.manual_seed(0)
    model = fc.create_model("mmdynamics", data.schema, hidden_dim=8)
    fit(model, data, fc.TrainConfig(epochs=0, scheduler="none"), progress=False)
    return model.save(folder)


def edited(source: Path, dest: Path, config: Callable[[dict], None] | None = None,
           state: Callable[[dict], None] | None = None) -> Path:
    """A copy of checkpoint ``source`` at ``dest`` with ``config.json`` and/or the weights edited in place."""
    shutil.copytree(source, dest)
    if config is not None:
        raw = json.loads((dest / "config.json").read_text())
        config(raw)
        (dest / "config.json").write_text(json.dumps(raw))
    if state is not None:
        tensors = load_file(str(dest / "model.safetensors"))
        state(tensors)
        save_file(tensors, str(dest / "model.safetensors"))
    return dest


def zip_of(files: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=method) as zf:
        for name, payload in files.items():
            zf.writestr(name, payload)
    return buf.getvalue()


def with_method(payload: bytes, member: str, method: int, flag_bits: int = 0) -> bytes:
    """``payload`` (a zip) with ``member``'s compression method (and general-purpose flags) rewritten
    in both its local header and the central directory, as an archiver using it would write them
    (e.g. 9 = Deflate64 from Windows Explorer, flag bit 0 = encrypted)."""
    data = bytearray(payload)
    name = member.encode()
    for sig, flag_at, method_at, name_len_at, name_at in ((b"PK\x03\x04", 6, 8, 26, 30), (b"PK\x01\x02", 8, 10, 28, 46)):
        start = 0
        while (i := data.find(sig, start)) >= 0:
            n = struct.unpack_from("<H", data, i + name_len_at)[0]
            if bytes(data[i + name_at : i + name_at + n]) == name:
                struct.pack_into("<H", data, i + method_at, method)
                flags = struct.unpack_from("<H", data, i + flag_at)[0]
                struct.pack_into("<H", data, i + flag_at, flags | flag_bits)
            start = i + 4
    return bytes(data)


def zip_bomb(config: bytes, inflated_bytes: int) -> bytes:
    """A checkpoint zip whose ``model.safetensors`` is ``inflated_bytes`` of zeros (a few kB compressed)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        zf.writestr("config.json", config)
        with zf.open("model.safetensors", "w", force_zip64=True) as member:
            chunk = bytes(1 << 20)
            for _ in range(inflated_bytes // len(chunk)):
                member.write(chunk)
    return buf.getvalue()


def blank_png(width: int, height: int) -> bytes:
    """A real, valid ``width x height`` RGB PNG of black pixels, written row by row (little memory)."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    packer = zlib.compressobj(9)
    row = bytes(1 + 3 * width)  # filter byte 0 + RGB zeros
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def spy_extractions(monkeypatch) -> list[tuple[str, int, int]]:
    """Record (member, bytes on disk when its extraction stopped, cap) for every archive member
    the upload code extracts, from now on."""
    import fusioncore.inspect.uploads as uploads

    seen: list[tuple[str, int, int]] = []
    real = uploads._extract_capped

    def spy(zf, info, target, cap, archive):
        try:
            return real(zf, info, target, cap, archive)
        finally:
            seen.append((info.filename, target.stat().st_size if target.exists() else 0, cap))

    monkeypatch.setattr(uploads, "_extract_capped", spy)
    return seen
