"""Training-image statistics in the checkpoint and the out-of-distribution check; the image
input rule (cover + centre crop, never squash)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from fusioncore.data.image_reference import ImageReference, check_image, input_rule
from fusioncore.data.images import to_model_input
from fusioncore.data.preprocessing import IdentityTransform, preprocessing_from_json, preprocessing_to_json


def tiles(n: int = 40, seed: int = 0) -> np.ndarray:
    """``(n, 3, 32, 32)`` pinkish tiles in [0, 1] (H&E-like means, some spread)."""
    rng = np.random.default_rng(seed)
    base = np.array([0.85, 0.55, 0.75])[None, :, None, None]
    return np.clip(base + rng.normal(0, 0.08, (n, 3, 32, 32)) + rng.normal(0, 0.03, (n, 3, 1, 1)), 0, 1).astype(np.float32)


def as_uint8(image_chw: np.ndarray) -> np.ndarray:
    return np.round(np.moveaxis(image_chw, 0, -1) * 255).astype(np.uint8)


def test_fit_and_json_round_trip_keep_the_identity():
    x = tiles()
    ref = ImageReference.fit(x, np.arange(40) % 5 != 0)
    assert ref.input_size == (32, 32) and ref.n_images == 32
    assert np.array_equal(ref.transform(x), x)  # images pass unchanged: training is bit-identical
    back = preprocessing_from_json(json.loads(json.dumps(preprocessing_to_json({"histology": ref}))))["histology"]
    assert back == ref
    # a checkpoint saved before the reference existed still loads, as the identity
    assert isinstance(preprocessing_from_json({"histology": {"kind": "identity"}})["histology"], IdentityTransform)
    with pytest.raises(ValueError, match="image reference is malformed"):
        preprocessing_from_json({"histology": {"kind": "identity", "reference": {"input_size": [32, 32]}}})


def test_an_image_like_the_training_images_passes():
    ref = ImageReference.fit(tiles())
    check = check_image(ref, as_uint8(tiles(1, seed=7)[0]), size=(32, 32))
    assert check.available and not check.out_of_distribution, check.warnings


def test_size_aspect_and_colour_are_flagged():
    ref = ImageReference.fit(tiles())
    big = np.repeat(np.repeat(as_uint8(tiles(1, seed=3)[0]), 16, axis=0), 24, axis=1)  # 512 x 768
    warnings = " ".join(check_image(ref, big, size=(32, 32)).warnings)
    assert "768 x 512 px" in warnings and "smaller than in training" in warnings
    assert "aspect ratio (1.50)" in warnings
    blue = as_uint8(tiles(1)[0])[..., ::-1].copy()  # channels swapped: another stain
    colour = check_image(ref, blue, size=(32, 32))
    assert any("colours differ" in w and "red" in w for w in colour.warnings)
    tiled = check_image(ref, big, size=(32, 32), tiled=True)  # whole-image maps: tiles, no scaling
    assert not any("smaller" in w or "aspect" in w for w in tiled.warnings)


def test_no_reference_means_unavailable_and_resolution_is_compared_when_known():
    image = as_uint8(tiles(1)[0])
    assert not check_image(None, image, size=(32, 32)).available
    ref = ImageReference.fit(tiles(), mpp=0.5)
    assert any("resolution is unknown" in w for w in check_image(ref, image, size=(32, 32)).warnings)
    assert any("2 µm/px" in w for w in check_image(ref, image, size=(32, 32), mpp=2.0).warnings)
    assert not check_image(ref, image, size=(32, 32), mpp=0.55).warnings


def test_input_rule_covers_and_crops_the_centre_without_squashing():
    h, w = 40, 80
    stripes = np.zeros((h, w, 3), dtype=np.uint8)
    stripes[:, ::4] = 255
    out = to_model_input(stripes, (32, 32))
    expected = np.asarray(Image.fromarray(stripes).resize((64, 32), Image.Resampling.BILINEAR))[:, 16:48]
    assert out.shape == (3, 32, 32)
    np.testing.assert_array_equal(np.round(out * 255).astype(np.uint8), np.moveaxis(expected, -1, 0))
    square = np.asarray(Image.fromarray(stripes[:, :40]))
    np.testing.assert_array_equal(  # a square image is a plain resize, as before the rule was stated
        to_model_input(square, (32, 32)),
        np.moveaxis(np.asarray(Image.fromarray(square).resize((32, 32), Image.Resampling.BILINEAR)), -1, 0) / np.float32(255))
    assert "centre-cropped" in input_rule(h, w, (32, 32)) and "50%" in input_rule(h, w, (32, 32))
    assert "used as is" in input_rule(32, 32, (32, 32))


def test_trainer_stores_the_reference_and_trains_bit_identically(tmp_path):
    import torch

    import fusioncore as fc
    from fusioncore.config import TrainConfig
    from fusioncore.demo import make_demo_cohort
    from fusioncore.training import fit

    data = make_demo_cohort(n=24).data
    cfg = TrainConfig(epochs=2, lr=1e-2, scheduler="none", seed=0)
    models = []
    for preprocessing in ("auto", None):
        torch.manual_seed(0)
        model = fc.create_model("mmdynamics", data.schema, hidden_dim=8, image_hidden_dim=8, image_gate="paper", dropout=0.0)
        if preprocessing is None:  # what fit did before the reference: identity for the image
            from fusioncore.training import fit_preprocessing

            preprocessing = {**fit_preprocessing(data), "histology": IdentityTransform()}
        fit(model, data, cfg, progress=False, preprocessing=preprocessing)
        models.append(model)
    assert isinstance(models[0].preprocessing["histology"], ImageReference)
    for (name, a), b in zip(models[0].state_dict().items(), models[1].state_dict().values()):
        assert torch.equal(a, b), name
    models[0].save(tmp_path / "ckpt")
    loaded = fc.load(tmp_path / "ckpt")
    assert loaded.preprocessing["histology"] == models[0].preprocessing["histology"]
