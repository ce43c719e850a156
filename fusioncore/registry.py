"""A small registry of fusion methods, in the spirit of timm's ``register_model``.

A method is a name bound to its model class, its hyper-parameter dataclass, its published
training recipe (``train_defaults``, what ``--recipe paper`` runs) and, optionally, its own rule
for the default recipe on given modality kinds (:func:`get_recipe`). Tests are parametrised over :func:`list_models`, so a newly registered method
is forward/backward/save/load/missing-modality tested for free.

The registry imports nothing above it (timm's ``_registry`` shape): the built-in methods register
themselves when ``fusioncore.models`` is imported, and ``fusioncore/__init__.py`` imports it, so
any ``import fusioncore...`` has them registered before this module is used.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from torch import nn

from .config import RECIPE_NAMES, DataSchema, ModelConfig, Recipe, TrainConfig, derive_default_recipe, override


@dataclass(frozen=True)
class MethodEntry:
    name: str
    model_cls: type
    config_cls: type
    train_defaults: TrainConfig
    description: str
    supports: tuple[str, ...]  # modality kinds the method accepts
    #: ``(kinds, published TrainConfig) -> Recipe``: the method's default recipe for data of these
    #: modality kinds; None = :func:`~fusioncore.config.derive_default_recipe`.
    default_recipe: Callable[[frozenset[str], TrainConfig], Recipe] | None = None


_REGISTRY: dict[str, MethodEntry] = {}


def register_method(
    name: str,
    config_cls: type,
    *,
    train_defaults: TrainConfig = TrainConfig(),
    description: str = "",
    supports: tuple[str, ...] = ("tabular",),
    default_recipe: Callable[[frozenset[str], TrainConfig], Recipe] | None = None,
) -> Callable[[type], type]:
    """Class decorator: make a :class:`FusionModel` subclass creatable by ``name``."""

    def wrap(model_cls: type) -> type:
        if name in _REGISTRY and _REGISTRY[name].model_cls is not model_cls:
            raise ValueError(f"method {name!r} is already registered by {_REGISTRY[name].model_cls.__name__}")
        model_cls.method = name
        _REGISTRY[name] = MethodEntry(name, model_cls, config_cls, train_defaults, description, supports, default_recipe)
        return model_cls

    return wrap


def list_models() -> list[str]:
    """Names of every registered method, sorted."""
    return sorted(_REGISTRY)


def get_method(name: str) -> MethodEntry:
    if name not in _REGISTRY:
        raise ValueError(f"unknown method {name!r}; available: {', '.join(sorted(_REGISTRY))}")
    return _REGISTRY[name]


def get_recipe(name: str, schema: DataSchema, recipe: str = "default") -> Recipe:
    """Recipe ``recipe`` of method ``name`` for data ``schema``.

    ``paper``: the published procedure exactly (``train_defaults``, no hyper-parameter change, no
    validation split, the final epoch). ``default``: what the method states for the schema's
    modality kinds, falling back to :func:`~fusioncore.config.derive_default_recipe`.
    """
    entry = get_method(name)
    if recipe not in RECIPE_NAMES:
        raise ValueError(f"--recipe {recipe!r}: unknown recipe; use one of {', '.join(RECIPE_NAMES)}")
    if recipe == "paper":
        return Recipe("paper", entry.train_defaults, {}, None)
    kinds = frozenset(m.kind for m in schema.modalities)
    rule = entry.default_recipe or derive_default_recipe
    return rule(kinds, entry.train_defaults)


def create_model(name: str, schema: DataSchema, config: ModelConfig | None = None, **overrides: Any) -> nn.Module:
    """Build method ``name`` for data ``schema`` (a :class:`~fusioncore.models.base.FusionModel`; typed as
    ``nn.Module`` because the registry imports nothing from the models it holds); ``overrides`` change config
    fields."""
    entry = get_method(name)
    unsupported = sorted({m.kind for m in schema.modalities} - set(entry.supports))
    if unsupported:
        raise ValueError(
            f"method {name!r} supports {', '.join(entry.supports)} modalities, not {', '.join(unsupported)}"
        )
    config = config if config is not None else entry.config_cls()
    if overrides:
        config = override(config, **overrides)
    from .budget import check_model_size

    check_model_size(entry.model_cls, config, schema)  # refuse before allocating a model too large to build
    return entry.model_cls(config, schema)
