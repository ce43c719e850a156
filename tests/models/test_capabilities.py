"""What each registered method says it can do, and that nobody outside a model asks its config.

Why: the trainer, the explainers and the dashboard decide by these answers (whether to refuse
unlabelled data, set class weights, show the attention view, pool attributions over which
patch, read the method's own image map). A method whose answer silently changes would change
those decisions, so every method's answers are written out here; a newly registered method fails
the first test until its row is added.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.registry import get_method, list_models

REPO = Path(__file__).resolve().parents[2]

#: method -> (gives_attention, accepts_missing_values, needs_labels, uses_class_weights,
#:            supported kinds, explanation_patch_size) with the default config.
EXPECTED = {
    "early": (False, False, True, False, ("tabular", "image"), 8),
    "late": (False, False, True, False, ("tabular", "image"), 8),
    "hybrid": (True, False, True, False, ("tabular", "image"), 8),
    "mca": (True, True, True, False, ("tabular", "sequence", "image"), 8),
    "zorro": (True, True, True, False, ("tabular", "sequence", "image"), 8),
    "eao": (True, True, True, False, ("tabular", "sequence", "image"), 8),
    "mmdynamics": (False, False, True, False, ("tabular", "image"), 8),
    "mmstatic": (False, False, True, True, ("tabular", "image"), 8),
}

IMAGE_SCHEMA = DataSchema((ModalitySpec("img", "image", (3, 16, 16)), ModalitySpec("rna", "tabular", (5,))), ("a", "b"))
TABLE_SCHEMA = DataSchema((ModalitySpec("rna", "tabular", (5,)), ModalitySpec("meth", "tabular", (4,))), ("a", "b"))


def test_every_registered_method_has_its_capabilities_written_down():
    assert sorted(EXPECTED) == list_models()


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_capabilities_with_the_default_config(name):
    torch.manual_seed(0)
    model = fc.create_model(name, TABLE_SCHEMA)
    attention, missing, labels, weights, kinds, patch = EXPECTED[name]
    assert model.gives_attention is attention
    assert model.accepts_missing_values is missing
    assert model.needs_labels is labels
    assert model.uses_class_weights is weights
    assert model.supported_kinds() == kinds == tuple(get_method(name).supports)
    assert type(model).supported_kinds() == kinds  # asked of the class, before any model is built
    assert model.explanation_patch_size == patch
    assert all(model.image_map(m) is None for m in model.modality_names)  # no image, no image map


def test_capabilities_follow_the_config():
    assert not fc.create_model("mca", TABLE_SCHEMA, lambda_supervised=0.0).needs_labels  # the paper's self-supervised MCA
    assert fc.create_model("eao", TABLE_SCHEMA, lambda_supervised=0.5).needs_labels
    assert fc.create_model("mmdynamics", TABLE_SCHEMA, class_weighted=True).uses_class_weights
    assert not fc.create_model("mmstatic", TABLE_SCHEMA, class_weighted=False).uses_class_weights
    assert fc.create_model("mca", IMAGE_SCHEMA, image_patch_size=4).explanation_patch_size == 4
    assert fc.create_model("hybrid", IMAGE_SCHEMA, image_tokens="patches", image_patch_size=16).explanation_patch_size == 16
    # the paper U-Net answers per 8 x 8 cell: its map is constant on lcm(patch, 8)
    kw = dict(image_gate="paper")
    assert fc.create_model("mmdynamics", IMAGE_SCHEMA, image_patch_size=4, **kw).explanation_patch_size == 8
    assert fc.create_model("mmdynamics", IMAGE_SCHEMA, image_patch_size=16, **kw).explanation_patch_size == 16
    assert fc.create_model("mmdynamics", IMAGE_SCHEMA, image_patch_size=4, image_gate="smp",
                           image_gate_encoder="resnet18").explanation_patch_size == 4


def test_only_mmdynamics_gives_its_own_image_map():
    torch.manual_seed(0)
    x = torch.rand(2, 3, 16, 16)
    for name in EXPECTED:
        model = fc.create_model(name, IMAGE_SCHEMA).eval()
        own = model.image_map("img")
        assert (own is not None) == (name == "mmdynamics"), name
        assert model.image_map("rna") is None
    model = fc.create_model("mmdynamics", IMAGE_SCHEMA, image_gate="paper").eval()
    with torch.no_grad():
        heat = model.image_map("img")(x)
    assert heat.shape[:2] == (2, 1) and bool(((heat > 0) & (heat < 1)).all())
    # without feature gates the U-Net is never trained or used: no map rather than a meaningless one
    assert fc.create_model("mmdynamics", IMAGE_SCHEMA, feature_informativeness=False).image_map("img") is None


# -- nobody outside models/ reads a model's config fields by name ------------------------------

#: Names an expression ending in which is taken to be a model (``model``, ``self.model``, ``ctx.model``).
MODEL_NAMES = {"model", "net", "fusion_model"}


def _is_model(node: ast.AST) -> bool:
    return (isinstance(node, ast.Name) and node.id in MODEL_NAMES) or (
        isinstance(node, ast.Attribute) and node.attr in MODEL_NAMES)


def _is_config(node: ast.AST) -> bool:
    return isinstance(node, ast.Attribute) and node.attr == "config"


def config_reads(tree: ast.AST) -> list[tuple[int, str]]:
    """``(line, what)`` for every read of a config field by name, or of a model attribute by a
    string: ``x.config.field``, ``getattr(x.config, ...)``, ``cfg = x.config``,
    ``getattr(model, "name")`` and ``model.branches``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and _is_config(node.value):
            found.append((node.lineno, f".config.{node.attr}"))
        elif isinstance(node, ast.Attribute) and node.attr == "branches":
            found.append((node.lineno, ".branches"))
        elif isinstance(node, ast.Assign) and _is_config(node.value):
            found.append((node.lineno, "a name bound to .config"))
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("getattr", "hasattr")
              and node.args):
            target = node.args[0]
            if _is_config(target):
                found.append((node.lineno, f"{node.func.id}(<...>.config, ...)"))
            elif _is_model(target) and len(node.args) > 1 and isinstance(node.args[1], ast.Constant):
                found.append((node.lineno, f"{node.func.id}(model, {node.args[1].value!r})"))
    return found


def test_the_config_read_finder_finds_each_kind_of_read():
    code = ("a = model.config.lambda_supervised\nb = getattr(model.config, 'class_weighted', False)\n"
            "cfg = ctx.model.config\nc = getattr(self.model, 'gives_attention', False)\nd = model.branches['img']\n"
            "e = provenance(config=model.config)\nf = model.explanation_patch_size\n")
    assert sorted(line for line, _ in config_reads(ast.parse(code))) == [1, 2, 3, 4, 5]


def test_nothing_outside_models_reads_model_config_fields_by_name():
    offenders = []
    for root in ("fusioncore", "app"):
        for path in sorted((REPO / root).rglob("*.py")):
            rel = path.relative_to(REPO)
            if rel.parts[:2] == ("fusioncore", "models"):
                continue
            offenders += [f"{rel}:{line}: {what}" for line, what in config_reads(ast.parse(path.read_text()))]
    assert not offenders, "ask the model (a FusionModel capability) instead:\n" + "\n".join(offenders)
