"""Safe image loading: formats, mode conversion, bad files, tables listing every bad row."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fusioncore.data.images import (
    ImageLoadError,
    load_image,
    load_image_column,
    load_image_table,
    mask_images,
    read_image,
    to_model_input,
)

HE_TILES = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "he_tiles"


def _rgb(seed: int = 0, size=(20, 30)) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(*size, 3), dtype=np.uint8)


@pytest.mark.parametrize("suffix", [".png", ".tif", ".tiff"])
def test_lossless_rgb_round_trip(tmp_path, suffix):
    arr = _rgb()
    Image.fromarray(arr).save(tmp_path / f"a{suffix}")
    loaded = read_image(tmp_path / f"a{suffix}")
    assert np.array_equal(loaded.pixels, arr)
    assert loaded.conversion == "RGB (no conversion)"


def test_jpeg_loads_close_to_source(tmp_path):
    arr = np.full((16, 16, 3), (200, 120, 180), dtype=np.uint8)
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    loaded = read_image(tmp_path / "a.jpg")
    assert loaded.source_format == "JPEG" and np.abs(loaded.pixels.astype(int) - arr).max() <= 4


def test_grayscale_is_replicated_and_said(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8)
    Image.fromarray(gray, mode="L").save(tmp_path / "g.png")
    loaded = read_image(tmp_path / "g.png")
    assert loaded.pixels.shape == (8, 8, 3)
    assert all(np.array_equal(loaded.pixels[..., c], gray) for c in range(3))
    assert "replicated" in loaded.conversion


def test_16bit_grayscale_tiff_is_rescaled(tmp_path):
    arr = np.array([[0, 65535], [32768, 1000]], dtype=np.uint16)
    Image.fromarray(arr).save(tmp_path / "g16.tif")
    loaded = read_image(tmp_path / "g16.tif")
    assert loaded.pixels[0, 0, 0] == 0 and loaded.pixels[0, 1, 0] == 255
    assert "scaled" in loaded.conversion


def test_rgba_is_composited_over_white(tmp_path):
    rgba = np.zeros((4, 4, 4), dtype=np.uint8)
    rgba[..., 0] = 255  # red
    rgba[:2, :, 3] = 255  # opaque top half, transparent bottom half
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "a.png")
    loaded = read_image(tmp_path / "a.png")
    assert loaded.pixels[0, 0].tolist() == [255, 0, 0]
    assert loaded.pixels[3, 0].tolist() == [255, 255, 255]
    assert "alpha composited over white" in loaded.conversion


def test_not_an_image_is_refused(tmp_path):
    (tmp_path / "notes.png").write_text("sample,label\n")
    with pytest.raises(ImageLoadError, match="not an image"):
        read_image(tmp_path / "notes.png")


def test_unsupported_format_is_refused(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "a.gif")
    with pytest.raises(ImageLoadError, match="GIF images are not supported"):
        read_image(tmp_path / "a.gif")


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
def test_truncated_image_is_refused(tmp_path, suffix):
    Image.fromarray(_rgb(size=(64, 64))).save(tmp_path / f"full{suffix}")
    data = (tmp_path / f"full{suffix}").read_bytes()
    (tmp_path / f"cut{suffix}").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError, match="truncated or corrupt"):
        read_image(tmp_path / f"cut{suffix}")


def _png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header claims ``width x height`` but holds almost no data (a bomb shape)."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused(tmp_path):
    (tmp_path / "bomb.png").write_bytes(_png_header_only(100_000, 100_000))
    with pytest.raises(ImageLoadError, match="decompression bomb"):
        read_image(tmp_path / "bomb.png")
    Image.fromarray(_rgb(size=(40, 40))).save(tmp_path / "small.png")
    with pytest.raises(ImageLoadError, match="exceeds the limit"):
        read_image(tmp_path / "small.png", max_pixels=1000)


def test_missing_file_is_named(tmp_path):
    with pytest.raises(ImageLoadError, match="no such file"):
        read_image(tmp_path / "nope.png")


def test_model_input_is_chw_unit_float():
    x = to_model_input(np.full((10, 12, 3), 255, dtype=np.uint8), (8, 8))
    assert x.shape == (3, 8, 8) and x.dtype == np.float32 and float(x.max()) == 1.0


def test_image_column_lists_every_bad_row_at_once(tmp_path):
    Image.fromarray(_rgb()).save(tmp_path / "ok.png")
    (tmp_path / "sub").mkdir()
    Image.fromarray(_rgb(1)).save(tmp_path / "sub" / "ok2.jpg")
    (tmp_path / "text.png").write_text("hello")
    table = tmp_path / "images.csv"
    table.write_text("sample,path\nS1,ok.png\nS2,missing.png\nS3,sub/ok2.jpg\nS4,text.png\nS5,\n")
    with pytest.raises(ImageLoadError) as err:
        load_image_table(table, size=(16, 16))
    msg = str(err.value)
    assert "3 of 5 image(s)" in msg
    assert "row 2 (sample 'S2'" in msg and "no such file" in msg
    assert "row 4 (sample 'S4'" in msg and "not an image" in msg
    assert "row 5 (sample 'S5'" in msg and "empty image path" in msg
    assert "S1" not in msg and "S3" not in msg
    table.write_text("sample,path\nS1,ok.png\nS3,sub/ok2.jpg\n")
    ids, arr = load_image_table(table, size=(16, 16))
    assert ids == ("S1", "S3") and arr.shape == (2, 3, 16, 16)
    assert np.array_equal(arr, load_image_column(tmp_path, ["S1", "S3"], ["ok.png", "sub/ok2.jpg"], (16, 16)))


def test_mask_images_keeps_presence_and_grays_images():
    from fusioncore.data.synthetic_cohort import make_synthetic_cohort

    data = make_synthetic_cohort(n=6, seed=3).data
    masked = mask_images(data)
    assert np.all(masked.features["histology"] == 0.5)
    assert np.array_equal(masked.features["mrna"], data.features["mrna"])
    assert np.array_equal(masked.present, data.present)
    with pytest.raises(ValueError, match="not an image"):
        mask_images(data, modalities=["mrna"])


@pytest.mark.skipif(not HE_TILES.is_dir(), reason="shared H&E tiles not available")
def test_real_he_tiles_load_as_rgb():
    files = sorted(HE_TILES.glob("*.png"))
    assert len(files) >= 10
    for f in files:
        loaded = read_image(f)
        assert loaded.pixels.ndim == 3 and loaded.pixels.shape[2] == 3 and loaded.pixels.dtype == np.uint8
        assert loaded.source_mode in ("RGB", "RGBA")
    x = load_image(HE_TILES / "cmu1_small_region_crop_x1024_y768_512.png", (64, 64))
    assert x.shape == (3, 64, 64) and 0.0 <= x.min() and x.max() <= 1.0
