"""The shared contract test with an image modality next to tabular ones.

Every registered method that supports image modalities runs here with its default config (a
method registered with ``supports=(..., "image")`` is picked up without a new test), plus hybrid
with ``image_tokens="patches"``, the one variant that changes how an image enters: early / late /
hybrid encode the image with the SmallCNN (``fusioncore.encoders.modality``), mca / zorro / eao
(and hybrid with patch tokens) cut it into patch tokens (``fusioncore.encoders.tokenizers``),
MM-dynamics / MM-static run the U-Net image branch. Absence must be handled exactly as for
feature vectors: an absent image gets no gradient and no explanation.
"""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec

from .base import ModelTester, methods_supporting


class TestImagePlusTabular(ModelTester):
    @pytest.fixture(params=[*methods_supporting("image"), "hybrid:patches"])
    def method_name(self, request) -> str:
        return request.param

    @pytest.fixture
    def model(self, method_name: str, schema: DataSchema):
        torch.manual_seed(0)
        method, _, variant = method_name.partition(":")
        return fc.create_model(method, schema, **({"image_tokens": "patches"} if variant == "patches" else {}))

    @pytest.fixture
    def schema(self) -> DataSchema:
        return DataSchema(
            (ModalitySpec("img", "image", (3, 16, 16)), ModalitySpec("rna", "tabular", (5,))),
            ("a", "b"),
        )
