"""The tissue mask: on the real Aperio slide (a vertical strip of skin on glass), on generated
islands, and on bare glass; tile coverage from the mask."""

from __future__ import annotations

import numpy as np
import pytest

from slide_helpers import cmu_slide, slide_factory, textures  # noqa: F401  (fixtures)

from fusioncore.slides import open_slide
from fusioncore.slides.tissue import tissue_mask, tissue_mask_from_rgb


def test_tissue_mask_on_the_real_slide(cmu_slide):  # noqa: F811
    with open_slide(cmu_slide) as slide:
        mask = tissue_mask(slide)
    h, w = mask.mask.shape
    assert max(h, w) == round(2967 * 0.499 / 4) and mask.downsample[0] == pytest.approx(2220 / w)  # ~4 um per mask px
    assert 0.25 < mask.fraction < 0.45  # a strip of skin; most of the slide is glass
    assert not mask.mask[: h // 20, : w // 10].any() and not mask.mask[-h // 20 :, -w // 10 :][:, -5:].any()
    columns = mask.mask.mean(axis=0)
    assert columns[: w // 10].mean() < 0.1 and columns[int(0.4 * w) : int(0.6 * w)].mean() > 0.6
    # small holes (lumina) are filled: the strip's interior is solid
    assert mask.mask[int(0.6 * h) : int(0.7 * h), int(0.45 * w) : int(0.55 * w)].mean() > 0.95


def test_tissue_mask_on_generated_islands_and_glass(slide_factory):  # noqa: F811
    path = slide_factory("islands.tif", (4096, 3072), levels=3, n_islands=3)
    with open_slide(path) as slide:
        mask = tissue_mask(slide)
        thumb, _ = slide.thumbnail(max(mask.mask.shape))
    tissue = thumb[mask.mask].mean(axis=0)
    glass = thumb[~mask.mask].mean(axis=0)
    assert 0.05 < mask.fraction < 0.5
    assert glass.min() > 230 and tissue.mean() < 215  # the mask keeps the stained areas only
    blank = np.full((512, 512, 3), 243, dtype=np.uint8) + np.random.default_rng(0).integers(0, 4, (512, 512, 1)).astype(np.uint8)
    assert not tissue_mask_from_rgb(blank, (1.0, 1.0)).mask.any()


def test_coverage_counts_the_mask_under_each_box():
    mask = np.zeros((10, 10), dtype=bool)
    mask[:5, :5] = True
    from fusioncore.slides.tissue import TissueMask

    t = TissueMask(mask, (4.0, 4.0), 0.1)
    cov = t.coverage(np.array([0, 0, 20, 16]), np.array([0, 20, 0, 16]), (8.0, 8.0))
    np.testing.assert_allclose(cov, [1.0, 0.0, 0.0, 0.25])
