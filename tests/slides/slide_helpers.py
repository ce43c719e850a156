"""Fixtures of the slide tests (imported by the test files): real H&E textures, small generated
pyramidal slides, a tiny image model saved as a checkpoint. Everything that needs ../shared/data
skips cleanly without it."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS))

from conftest import SHARED_DATA  # noqa: E402

import fusioncore as fc  # noqa: E402
from fusioncore.config import DataSchema, ModalitySpec  # noqa: E402
from fusioncore.slides.synthetic import write_test_slide  # noqa: E402

REPO = TESTS.parent
CMU = SHARED_DATA / "he_tiles" / "region" / "CMU-1-Small-Region.svs"


@pytest.fixture(scope="session")
def textures() -> list[np.ndarray]:
    """The real full-tissue H&E tiles of ../shared/data/he_tiles (RGB uint8)."""
    paths = sorted((SHARED_DATA / "he_tiles").glob("histolab_tissue*.png"))
    if not paths:
        pytest.skip(f"real H&E tiles not available under {SHARED_DATA / 'he_tiles'}")
    return [np.asarray(Image.open(p).convert("RGB")) for p in paths]


@pytest.fixture(scope="session")
def cmu_slide() -> Path:
    if not CMU.is_file():
        pytest.skip(f"the real Aperio slide is not available at {CMU}")
    return CMU


@pytest.fixture(scope="session")
def slide_factory(textures, tmp_path_factory):
    """``make(name, size, **options)`` -> a generated slide, written once per session."""
    root = tmp_path_factory.mktemp("slides")
    made: dict[tuple, Path] = {}

    def make(name: str, size: tuple[int, int] = (1536, 1024), **options) -> Path:
        key = (name, size, tuple(sorted(options.items())))
        if key not in made:
            made[key] = write_test_slide(root / name, size, textures, **options)
        return made[key]

    return make


def tiny_image_model(tile: int = 32, seed: int = 0):
    """An untrained Image MM-dynamics (compact U-Net gate, SmallCNN) on ``tile``-px tiles plus one
    tabular modality (so the slide's "other modality is absent" path is exercised)."""
    torch.manual_seed(seed)
    schema = DataSchema(modalities=(ModalitySpec("histology", "image", (3, tile, tile)),
                                    ModalitySpec("rna", "tabular", (4,), tuple(f"g{i}" for i in range(4)))),
                        classes=("a", "b"))
    return fc.create_model("mmdynamics", schema, hidden_dim=8, image_hidden_dim=8, image_gate="paper",
                           image_encoder="smallcnn", image_patch_size=8, dropout=0.0).eval()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("tiny") / "ckpt"
    tiny_image_model().save(folder)
    return folder


def run_cli(*argv: str):
    """``fusioncore`` in-process: (exit code, parsed stdout JSON or None)."""
    import contextlib
    import io
    import json

    from fusioncore.cli import main

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = main(list(argv))
    text = out.getvalue()
    return code, (json.loads(text) if text.strip() else None)
