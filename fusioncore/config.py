"""Configuration dataclasses and their JSON form.

Every model is built from two things: a *schema* (what the data looks like: modalities, feature
names, classes), and a method *config* (hyper-parameters). Both are frozen dataclasses that
serialise to plain JSON, so a checkpoint's ``config.json`` is readable and diffable, and
nothing of ours is ever pickled.
"""

from __future__ import annotations

import dataclasses
import json
import math
import types
import typing
from dataclasses import dataclass, field
from typing import Any, Literal

ModalityKind = Literal["tabular", "image", "sequence"]


@dataclass(frozen=True)
class ModalitySpec:
    """One modality of a dataset.

    kind:     ``tabular`` (a feature vector), ``image`` (``(C, H, W)``) or ``sequence`` (``(L, d)``).
    features: feature names in column order (tabular); empty otherwise.
    shape:    per-sample shape without the batch: ``(d,)``, ``(C, H, W)`` or ``(L, d)``.
    mpp:      microns per pixel of an image modality as the model takes it (its training
              resolution), when the data says it; slide heatmaps run at this resolution.
    """

    name: str
    kind: ModalityKind
    shape: tuple[int, ...]
    features: tuple[str, ...] = ()
    mpp: float | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("tabular", "image", "sequence"):
            raise ValueError(f"modality {self.name!r}: kind must be tabular, image or sequence, got {self.kind!r}")
        if self.kind == "tabular" and self.features and len(self.features) != self.shape[0]:
            raise ValueError(
                f"modality {self.name!r}: {len(self.features)} feature names for {self.shape[0]} features"
            )
        if self.mpp is not None and (self.kind != "image" or not math.isfinite(float(self.mpp)) or float(self.mpp) <= 0):
            raise ValueError(f"modality {self.name!r}: mpp (microns per pixel) must be a positive number and is for "
                             f"image modalities only, got {self.mpp!r} on a {self.kind} modality")

    @property
    def dim(self) -> int:
        """Number of input features of a tabular modality (last dimension otherwise)."""
        return int(self.shape[-1]) if self.kind != "image" else int(self.shape[0])


@dataclass(frozen=True)
class DataSchema:
    """What a model expects: modalities (in order) and class names."""

    modalities: tuple[ModalitySpec, ...]
    classes: tuple[str, ...]

    def __post_init__(self) -> None:
        names = [m.name for m in self.modalities]
        if len(set(names)) != len(names):
            raise ValueError(f"modality names must be unique, got {names}")
        if len(self.classes) < 2:
            raise ValueError(f"a classification schema needs at least 2 classes, got {list(self.classes)}")

    @property
    def modality_names(self) -> list[str]:
        return [m.name for m in self.modalities]

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    def modality(self, name: str) -> ModalitySpec:
        for m in self.modalities:
            if m.name == name:
                return m
        raise KeyError(f"no modality {name!r}; the schema has {self.modality_names}")

    def index(self, name: str) -> int:
        return self.modality_names.index(name)


@dataclass(frozen=True)
class ModelConfig:
    """Base of every method's hyper-parameter dataclass (subclasses add fields)."""


@dataclass(frozen=True)
class TrainConfig:
    """How to train (a method's registry entry gives its published recipe as defaults).

    batch_size: ``None`` = full batch (one optimiser step per epoch over the whole train set,
    as MM-dynamics does).
    """

    epochs: int = 100
    lr: float = 1e-4
    weight_decay: float = 1e-4
    optimizer: Literal["adam", "adamw"] = "adam"
    scheduler: Literal["step", "cosine", "none"] = "step"
    step_size: int = 500
    gamma: float = 0.2
    warmup_steps: int = 0
    batch_size: int | None = None
    grad_clip: float | None = None
    seed: int = 0
    modality_dropout: float = 0.0
    eval_every: int = 0


#: Recipe names ``fusioncore train --recipe`` takes: ``default`` fits the data's modality kinds
#: (and picks its epoch on a validation split); ``paper`` is the method's published procedure.
RECIPE_NAMES = ("default", "paper")


@dataclass(frozen=True)
class SelectionConfig:
    """How a recipe picks its epoch without looking at the test split.

    A stratified, seeded ``fraction`` of the *training* split is held out as a validation split;
    after every epoch the model is scored on it (``monitor``: ``loss`` = fused cross-entropy,
    lower is better; ``acc`` / ``balanced_acc``: higher is better) and the best epoch's weights
    are kept and restored at the end. Training stops after ``patience`` epochs without
    improvement (0 = never stop early, still select). ``refit``: then train afresh on the whole
    training split (validation part included) for the selected number of epochs, and keep that
    model (more data for small cohorts; the epoch count still comes from validation, never
    from the test split). No epoch before ``min_epochs`` is selected
    and training never stops before it -- for losses with a schedule that must run its course
    first (MM-dynamics' sparsity ramp: a gate that has not yet been asked to close is no
    explanation).
    """

    fraction: float = 0.15
    monitor: Literal["loss", "acc", "balanced_acc"] = "loss"
    patience: int = 10
    min_epochs: int = 0
    refit: bool = False

    def __post_init__(self) -> None:
        if not 0.0 < float(self.fraction) < 0.5:
            raise ValueError(f"validation fraction must be in (0, 0.5), got {self.fraction!r}")
        if self.monitor not in ("loss", "acc", "balanced_acc"):
            raise ValueError(f"validation monitor must be loss, acc or balanced_acc, got {self.monitor!r}")
        if int(self.patience) < 0 or int(self.min_epochs) < 0:
            raise ValueError(f"patience and min_epochs must be >= 0, got {self.patience} and {self.min_epochs}")


@dataclass(frozen=True)
class Recipe:
    """A named way to train a method on data of given modality kinds.

    train:        optimisation settings.
    model_params: hyper-parameter changes the recipe needs (field -> value of the method's
                  config; the method states them, see ``register_method(default_recipe=...)``).
    selection:    validation split and epoch selection, or None (train all epochs, keep the last).
    """

    name: str
    train: TrainConfig
    model_params: dict[str, Any] = field(default_factory=dict)
    selection: SelectionConfig | None = None


#: Mini-batch settings for a full-batch recipe on data with an image modality: a full batch of
#: images does not fit a CPU's time (1000 epochs of MM-dynamics ran > 45 min on the demo cohort),
#: 32-image batches with a cosine schedule converge in a few dozen epochs (docs/results.md, section 8).
IMAGE_BATCH_SIZE = 32
IMAGE_LR = 2e-3
IMAGE_MAX_EPOCHS = 32


def derive_default_recipe(kinds: frozenset[str] | set[str], paper: TrainConfig) -> Recipe:
    """The default recipe of a method whose published recipe is ``paper``, for data of ``kinds``.

    Tables and sequences keep the published optimisation; with an image modality a full-batch
    (or very large-batch) recipe becomes 32-sample mini-batches, lr 2e-3, cosine decay, and
    every recipe on images is capped at 32 epochs. Every default selects its epoch on a 15 %
    validation split (patience: a fifth of the epochs, at least 5).
    """
    train = paper
    if "image" in kinds:
        if paper.batch_size is None or paper.batch_size > 2 * IMAGE_BATCH_SIZE:
            train = dataclasses.replace(train, batch_size=IMAGE_BATCH_SIZE, lr=IMAGE_LR, scheduler="cosine",
                                        warmup_steps=0)
        train = dataclasses.replace(train, epochs=min(train.epochs, IMAGE_MAX_EPOCHS))
    return Recipe("default", train, {}, SelectionConfig(patience=max(5, train.epochs // 5)))


def to_jsonable(obj: Any) -> Any:
    """Dataclasses (nested) -> plain JSON values; tuples become lists."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: to_jsonable(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    return obj


def _coerce(tp: Any, value: Any, where: str) -> Any:
    """Turn a JSON value back into the annotated type ``tp`` (tuples, nested dataclasses)."""
    origin = typing.get_origin(tp)
    if value is None:
        return None
    if dataclasses.is_dataclass(tp):
        return from_jsonable(tp, value, where)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1:
            return _coerce(args[0], value, where)
        return value
    if origin is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_coerce(args[0], v, where) for v in value)
        return tuple(value)
    if origin is list:
        (arg,) = typing.get_args(tp) or (Any,)
        return [_coerce(arg, v, where) for v in value]
    if tp is float and isinstance(value, int):
        return float(value)
    return value


def from_jsonable(cls: type, data: dict[str, Any], where: str = "config") -> Any:
    """Build dataclass ``cls`` from a JSON object, rejecting unknown fields by name."""
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected a JSON object for {cls.__name__}, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ValueError(f"{where}: unknown field(s) {unknown} for {cls.__name__}; known: {sorted(known)}")
    kwargs = {k: _coerce(hints[k], v, f"{where}.{k}") for k, v in data.items()}
    return cls(**kwargs)


def override(config: Any, **changes: Any) -> Any:
    """A copy of a frozen dataclass with ``changes`` (``None`` values are ignored)."""
    changes = {k: v for k, v in changes.items() if v is not None}
    return dataclasses.replace(config, **changes)


def dumps(obj: Any) -> str:
    return json.dumps(to_jsonable(obj), indent=2, sort_keys=False)


def schema_to_json(schema: DataSchema) -> dict[str, Any]:
    """The schema as JSON; an unknown ``mpp`` is left out, so checkpoints without one keep their bytes."""
    data = to_jsonable(schema)
    for m in data["modalities"]:
        if m.get("mpp") is None:
            m.pop("mpp", None)
    return data


def schema_from_json(data: dict[str, Any]) -> DataSchema:
    mods = tuple(
        ModalitySpec(
            name=m["name"], kind=m["kind"], shape=tuple(m["shape"]), features=tuple(m.get("features", ())),
            mpp=None if m.get("mpp") is None else float(m["mpp"]),
        )
        for m in data["modalities"]
    )
    return DataSchema(modalities=mods, classes=tuple(data["classes"]))


__all__ = [
    "ModalitySpec",
    "DataSchema",
    "ModelConfig",
    "TrainConfig",
    "SelectionConfig",
    "Recipe",
    "RECIPE_NAMES",
    "derive_default_recipe",
    "to_jsonable",
    "from_jsonable",
    "override",
    "dumps",
    "schema_to_json",
    "schema_from_json",
]
