"""The shared contract test with an image modality next to tabular ones (early, late, hybrid).

The image goes through the SmallCNN encoder (``fusioncore.encoders.modality``); absence must be
handled exactly as for feature vectors.
"""

from __future__ import annotations

import pytest

from fusioncore.config import DataSchema, ModalitySpec

from .base import ModelTester


class TestImagePlusTabular(ModelTester):
    @pytest.fixture(params=["early", "late", "hybrid"])
    def method_name(self, request) -> str:
        return request.param

    @pytest.fixture
    def schema(self) -> DataSchema:
        return DataSchema(
            (ModalitySpec("img", "image", (3, 8, 8)), ModalitySpec("rna", "tabular", (5,))),
            ("a", "b"),
        )
