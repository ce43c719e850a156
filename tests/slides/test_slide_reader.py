"""Opening slides: levels and microns per pixel of the real Aperio slide and of generated pyramidal
TIFFs (both layouts, both backends); bad files refused with a message naming them."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from slide_helpers import cmu_slide, run_cli, slide_factory, textures, tiny_checkpoint  # noqa: F401  (fixtures)

from fusioncore.slides import SlideError, open_slide


def test_real_aperio_slide_levels_and_mpp(cmu_slide):  # noqa: F811
    with open_slide(cmu_slide) as slide:
        info = slide.info
        assert info.backend == "openslide" and info.vendor == "aperio"
        assert info.level_dimensions == ((2220, 2967),)
        assert info.mpp == pytest.approx((0.499, 0.499))
        assert info.objective_power == 20.0
        pixels = slide.read_rgb((1000, 1000), 0, (64, 48))
        assert pixels.shape == (48, 64, 3) and pixels.dtype == np.uint8


@pytest.mark.parametrize("layout, backend", [("pages", "openslide"), ("subifds", "tiffslide")])
def test_generated_pyramid_levels_and_mpp(slide_factory, layout, backend):  # noqa: F811
    path = slide_factory(f"pyr_{layout}.tif", (8192, 6144), levels=4, mpp=0.25, layout=layout)
    with open_slide(path) as slide:
        assert slide.backend == backend  # OpenSlide sees one level of a SubIFD pyramid: tiffslide reads all
        assert slide.info.level_dimensions == ((8192, 6144), (4096, 3072), (2048, 1536), (1024, 768))
        assert slide.info.level_downsamples == (1.0, 2.0, 4.0, 8.0)
        assert slide.info.mpp == pytest.approx((0.25, 0.25))
        assert slide.get_best_level_for_downsample(5.0) == 2


def test_regions_outside_the_slide_read_as_glass(slide_factory):  # noqa: F811
    path = slide_factory("edge.tif", (1000, 700), levels=2, layout="subifds")  # tiffslide pads with black
    with open_slide(path) as slide:
        pixels = slide.read_rgb((960, 680), 0, (80, 40))
        assert (pixels[:, 40:] == 255).all() and (pixels[20:, :] == 255).all()
        assert not (pixels[:20, :40] == 255).all()


def _expect_refused(path, *words):
    with pytest.raises(SlideError) as err:
        open_slide(path)
    message = str(err.value)
    assert str(path) in message
    for word in words:
        assert word in message
    return message


def test_truncated_and_corrupt_slides_are_refused(slide_factory, cmu_slide, tmp_path):  # noqa: F811
    good = slide_factory("good.tif", (2048, 2048), levels=3)
    data = good.read_bytes()
    truncated = tmp_path / "truncated.tif"
    truncated.write_bytes(data[: len(data) // 2])
    _expect_refused(truncated, "truncated")
    svs = tmp_path / "truncated.svs"
    svs.write_bytes(cmu_slide.read_bytes()[:400_000])
    _expect_refused(svs, "truncated")
    garbage = tmp_path / "garbage.svs"
    garbage.write_bytes(np.random.default_rng(0).bytes(50_000))
    _expect_refused(garbage, "not a slide format")
    header_only = tmp_path / "header.tif"
    header_only.write_bytes(data[:8] + b"\xff" * 200)  # a TIFF signature with a broken directory
    _expect_refused(header_only)
    empty = tmp_path / "empty.svs"
    empty.write_bytes(b"")
    _expect_refused(empty, "empty")
    _expect_refused(tmp_path / "missing.svs", "no such file")
    corrupt = tmp_path / "corrupt.tif"  # every tile in place, but the JPEG data is noise
    raw = bytearray(data)
    raw[len(raw) // 3 : len(raw) - 4096] = np.random.default_rng(1).bytes(len(raw) - 4096 - len(raw) // 3)
    corrupt.write_bytes(bytes(raw))
    with pytest.raises(SlideError) as err:
        with open_slide(corrupt) as slide:
            for y in range(0, 2048, 512):
                slide.read_rgb((0, y), 0, (2048, 512))
    assert str(corrupt) in str(err.value)


def test_cli_refuses_a_corrupt_slide_with_a_message(tiny_checkpoint, tmp_path, capsys):  # noqa: F811
    bad = tmp_path / "slide.svs"
    bad.write_bytes(b"not a slide at all" * 100)
    code, out = run_cli("explain", "slide", "--checkpoint", str(tiny_checkpoint), "--slide", str(bad),
                        "--out", str(tmp_path / "out"), "--quiet")
    assert code == 2 and out is None
    err = capsys.readouterr().err
    assert "slide.svs" in err and "not a slide format" in err and "Traceback" not in err
