"""The shared contract test (``base.ModelTester``) over every registered tabular method.

A method registered anywhere in ``fusioncore.models`` is picked up here without a new test file.
"""

from __future__ import annotations

import pytest

from .base import ModelTester, tabular_methods


class TestEveryRegisteredMethod(ModelTester):
    @pytest.fixture(params=tabular_methods())
    def method_name(self, request) -> str:
        return request.param
