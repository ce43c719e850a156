"""The shared contract test with an image modality next to tabular ones.

early / late / hybrid encode the image with the SmallCNN (``fusioncore.encoders.modality``);
mca / zorro / eao (and hybrid with ``image_tokens="patches"``) cut it into patch tokens
(``fusioncore.encoders.tokenizers.PatchTokenizer``). Absence must be handled exactly as for
feature vectors: an absent image's tokens are masked like any absent modality's.
"""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec

from .base import ModelTester


class TestImagePlusTabular(ModelTester):
    @pytest.fixture(params=["early", "late", "hybrid", "hybrid:patches", "mca", "zorro", "eao"])
    def method_name(self, request) -> str:
        return request.param

    @pytest.fixture
    def model(self, method_name: str, schema: DataSchema):
        torch.manual_seed(0)
        method, _, variant = method_name.partition(":")
        # 4 x 4-px patches: the 8 x 8 test image becomes a 2 x 2 grid of tokens
        patches = {"image_patch_size": 4} if method in ("mca", "zorro", "eao") or variant == "patches" else {}
        if variant == "patches":
            patches["image_tokens"] = "patches"
        return fc.create_model(method, schema, **patches)

    @pytest.fixture
    def schema(self) -> DataSchema:
        return DataSchema(
            (ModalitySpec("img", "image", (3, 8, 8)), ModalitySpec("rna", "tabular", (5,))),
            ("a", "b"),
        )
