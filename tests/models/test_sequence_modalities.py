"""The shared contract test with sequence modalities next to a tabular one.

Every registered method that supports sequences (``supports=(..., "sequence")``: MCA, Zorro and
EAO today) runs here with its default config; a new method declaring the kind is picked up
without a new test. A sequence enters as ``(T, d)`` tokens; absence is handled as for feature
vectors (no gradient, no explanation for an absent sequence).
"""

from __future__ import annotations

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec

from .base import ModelTester, methods_supporting


class TestSequencePlusTabular(ModelTester):
    @pytest.fixture(params=methods_supporting("sequence"))
    def method_name(self, request) -> str:
        return request.param

    @pytest.fixture
    def model(self, method_name: str, schema: DataSchema):
        torch.manual_seed(0)
        return fc.create_model(method_name, schema)

    @pytest.fixture
    def schema(self) -> DataSchema:
        return DataSchema(
            (ModalitySpec("aud", "sequence", (7, 5)), ModalitySpec("rna", "tabular", (6,)),
             ModalitySpec("vis", "sequence", (4, 3))),
            ("a", "b"),
        )
