"""The shared contract test every fusion method gets (segmentation-models-pytorch style).

Subclass :class:`ModelTester` and set ``method`` (see ``test_early.py``), or let
``test_registered.py`` run it over every registered method that accepts tabular data. The
checks are the model contract of ``fusioncore/types.py`` (``Batch`` in, ``FusionOutput`` out;
docs/architecture.md):

* a forward with every presence pattern gives finite ``(B, K)`` logits, including with one modality;
* rows are independent of each other and of the *values* held for absent modalities;
* the loss is finite and gradients reach only present modalities (input rows and the
  parameters keyed by an absent modality's name stay at exactly zero);
* absent modalities get no explanation (zero gates/weights, NaN confidence, zero attention);
* ``save`` -> ``fusioncore.load`` is a bit-identical round trip.

Parameters "specific to modality m" are found by name: a dotted component equal to ``m`` (an
``nn.ModuleDict``/``ParameterDict`` keyed by modality, as every built-in method does).
Parameters whose name contains ``missing`` are excluded: a learned missing-modality embedding
is *meant* to be trained exactly when the modality is absent.
"""

from __future__ import annotations

import itertools

import pytest
import torch

import fusioncore as fc
from fusioncore.config import DataSchema, ModalitySpec
from fusioncore.registry import get_method
from fusioncore.types import Batch

DIMS = {"rna": 6, "meth": 9, "mirna": 5}
N_CLASSES = 3


def tiny_schema() -> DataSchema:
    """Three tabular modalities (names that cannot clash with module attribute names), 3 classes."""
    mods = tuple(
        ModalitySpec(n, "tabular", (d,), tuple(f"{n}_{i}" for i in range(d))) for n, d in DIMS.items()
    )
    return DataSchema(mods, tuple(f"class{i}" for i in range(N_CLASSES)))


def methods_supporting(kind: str) -> list[str]:
    """Every registered method that accepts modalities of ``kind`` (tabular, image, sequence)."""
    return [n for n in fc.list_models() if kind in get_method(n).supports]


def tabular_methods() -> list[str]:
    """Every registered method that accepts tabular modalities."""
    return methods_supporting("tabular")


def presence_patterns(n_modalities: int) -> list[tuple[bool, ...]]:
    """Every non-empty presence pattern, e.g. 7 for 3 modalities."""
    return [p for p in itertools.product([True, False], repeat=n_modalities) if any(p)]


def make_batch(schema: DataSchema, present: torch.Tensor, seed: int = 0, absent_fill: str = "zeros") -> Batch:
    """A batch with standard-normal features; absent rows hold zeros (or noise, to prove they are ignored)."""
    g = torch.Generator().manual_seed(seed)
    noise = torch.Generator().manual_seed(seed + 1000)  # separate stream: present values stay identical
    b = present.shape[0]
    inputs = {}
    for j, spec in enumerate(schema.modalities):
        x = torch.randn(b, *spec.shape, generator=g)
        fill = torch.zeros_like(x) if absent_fill == "zeros" else 10 * torch.randn(x.shape, generator=noise)
        here = present[:, j].view(-1, *([1] * len(spec.shape)))
        inputs[spec.name] = torch.where(here, x, fill)
    labels = torch.randint(0, schema.n_classes, (b,), generator=g)
    return Batch(inputs=inputs, present=present, labels=labels, sample_ids=[f"s{i}" for i in range(b)])


def mixed_presence(schema: DataSchema, repeats: int = 2) -> torch.Tensor:
    """``(P * repeats, M)`` bool: every non-empty pattern, ``repeats`` rows each."""
    rows = presence_patterns(len(schema.modalities))
    return torch.tensor([r for r in rows for _ in range(repeats)], dtype=torch.bool)


def modality_parameters(model: torch.nn.Module, name: str) -> dict[str, torch.nn.Parameter]:
    """Parameters keyed by modality ``name`` (see the module docstring), missing embeddings excluded."""
    return {
        k: p for k, p in model.named_parameters() if name in k.split(".") and "missing" not in k
    }


class ModelTester:
    """Contract tests; subclasses set ``method`` or override the ``method_name`` fixture."""

    method: str = ""

    @pytest.fixture
    def method_name(self) -> str:
        return self.method

    @pytest.fixture
    def schema(self) -> DataSchema:
        return tiny_schema()

    @pytest.fixture
    def model(self, method_name: str, schema: DataSchema):
        torch.manual_seed(0)
        return fc.create_model(method_name, schema)

    # -- forward --------------------------------------------------------------------------
    def test_forward_every_presence_pattern(self, model, schema):
        model.eval()
        for pattern in presence_patterns(len(schema.modalities)):
            present = torch.tensor([pattern] * 3, dtype=torch.bool)
            with torch.no_grad():
                for want_attention in (False, True):
                    out = model(make_batch(schema, present), return_attention=want_attention)
                    assert out.logits.shape == (3, schema.n_classes), pattern
                    assert torch.isfinite(out.logits).all(), f"non-finite logits with presence {pattern}"
                    assert torch.equal(out.present, present)
                    assert torch.allclose(out.probabilities.sum(-1), torch.ones(3), atol=1e-5)

    def test_rows_are_independent_and_absent_values_ignored(self, model, schema):
        model.eval()
        present = mixed_presence(schema)
        with torch.no_grad():
            mixed = model(make_batch(schema, present, seed=1)).logits
            noisy = model(make_batch(schema, present, seed=1, absent_fill="noise")).logits
            rowwise = torch.cat([model(make_batch(schema, present, seed=1).select(slice(i, i + 1))).logits
                                 for i in range(present.shape[0])])
        assert torch.allclose(mixed, noisy, atol=1e-5), "outputs depend on the values of absent modalities"
        assert torch.allclose(mixed, rowwise, atol=1e-5), "a row's output depends on the other rows of the batch"

    def test_fast_and_explicit_attention_paths_agree(self, model, schema):
        model.eval()
        batch = make_batch(schema, mixed_presence(schema), seed=2)
        with torch.no_grad():
            a, b = model(batch).logits, model(batch, return_attention=True).logits
        assert torch.allclose(a, b, atol=1e-5)

    # -- loss and gradients ----------------------------------------------------------------
    def test_loss_finite_every_pattern(self, model, schema):
        model.train()
        for pattern in presence_patterns(len(schema.modalities)):
            batch = make_batch(schema, torch.tensor([pattern] * 4, dtype=torch.bool), seed=3)
            model.zero_grad()
            loss = model.loss(model(batch), batch)
            assert torch.isfinite(loss.total), f"loss {loss.total} with presence {pattern}"
            loss.total.backward()
            for k, p in model.named_parameters():
                assert p.grad is None or torch.isfinite(p.grad).all(), f"non-finite gradient in {k} with {pattern}"

    def test_input_gradients_only_for_present_rows(self, model, schema):
        model.train()
        torch.manual_seed(0)
        present = mixed_presence(schema)
        batch = make_batch(schema, present, seed=4)
        for x in batch.inputs.values():
            x.requires_grad_(True)
        model.loss(model(batch), batch).total.backward()
        for j, spec in enumerate(schema.modalities):
            grad = batch.inputs[spec.name].grad
            assert grad is not None and torch.isfinite(grad).all()
            absent = ~present[:, j]
            assert torch.count_nonzero(grad[absent]) == 0, f"gradient reaches absent {spec.name} rows"
            assert torch.count_nonzero(grad[~absent]) > 0, f"no gradient reaches present {spec.name} rows"

    def test_absent_modality_parameters_get_no_gradient(self, model, schema):
        model.train()
        m = len(schema.modalities)
        for j, spec in enumerate(schema.modalities):
            own = modality_parameters(model, spec.name)
            assert own, f"{model.method}: no parameter is keyed by modality {spec.name!r}"
            present = torch.ones(6, m, dtype=torch.bool)
            present[:, j] = False
            batch = make_batch(schema, present, seed=5 + j)
            model.zero_grad(set_to_none=True)
            torch.manual_seed(0)
            model.loss(model(batch), batch).total.backward()
            for k, p in own.items():
                assert p.grad is None or torch.count_nonzero(p.grad) == 0, f"{k} learns while {spec.name} is absent"
            others = [p for o in schema.modalities if o.name != spec.name
                      for p in modality_parameters(model, o.name).values()]
            assert any(p.grad is not None and torch.count_nonzero(p.grad) > 0 for p in others)

    # -- explanations -----------------------------------------------------------------------
    def test_absent_modalities_get_no_explanation(self, model, schema):
        model.eval()
        present = mixed_presence(schema)
        with torch.no_grad():
            out = model(make_batch(schema, present, seed=6), return_attention=True)
        for j, name in enumerate(schema.modality_names):
            absent = ~present[:, j]
            if name in out.gates:
                assert torch.count_nonzero(out.gates[name][absent]) == 0, f"gates shown for absent {name}"
            if name in out.confidence:
                assert torch.isnan(out.confidence[name][absent]).all(), f"confidence shown for absent {name}"
            if name in out.modality_weights:
                assert torch.count_nonzero(out.modality_weights[name][absent]) == 0, f"weight for absent {name}"
        att = out.attention
        if att is not None and att.token_modality is not None:
            tok = att.token_modality
            for layer in att.layers:
                if layer is None or layer.shape[-1] != tok.shape[0]:
                    continue
                assert torch.isfinite(layer).all()
                for j in range(len(schema.modalities)):
                    cols = layer[..., tok == j]  # (B, H, S, T_j): attention *to* modality j's tokens
                    assert torch.count_nonzero(cols[~present[:, j]]) == 0, "attention to an absent modality"
            pooling = att.pooling
            if pooling is not None and pooling.shape[-1] == tok.shape[0]:
                for j in range(len(schema.modalities)):
                    assert torch.count_nonzero(pooling[..., tok == j][~present[:, j]]) == 0, "pooling on absent"

    # -- persistence ------------------------------------------------------------------------
    def test_eval_forward_is_deterministic(self, model, schema):
        # A precondition of the bit-identical round trip below, tested apart so a failure says which.
        model.eval()
        batch = make_batch(schema, mixed_presence(schema), seed=7)
        with torch.no_grad():
            assert torch.equal(model(batch).logits, model(batch).logits), "two identical eval forwards differ"

    def test_save_load_round_trip(self, model, schema, tmp_path):
        model.eval()
        batch = make_batch(schema, mixed_presence(schema), seed=7)
        with torch.no_grad():
            before = model(batch).logits
        model.save(tmp_path / "ckpt")
        loaded = fc.load(tmp_path / "ckpt")
        assert loaded.method == model.method and loaded.config == model.config and loaded.schema == schema
        for k, v in model.state_dict().items():
            assert torch.equal(v, loaded.state_dict()[k]), k
        with torch.no_grad():
            after = loaded(batch).logits
        assert torch.equal(before, after), "predictions changed after save/load"

    def test_bad_batch_is_refused(self, model, schema):
        batch = make_batch(schema, mixed_presence(schema))
        first = schema.modalities[0].name
        wrong = dict(batch.inputs)
        wrong[first] = torch.zeros(batch.size, schema.modalities[0].dim + 1)
        with pytest.raises(ValueError, match=first):
            model(Batch(inputs=wrong, present=batch.present))
