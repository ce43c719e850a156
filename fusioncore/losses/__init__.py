"""Losses shared by methods (contrastive recipes of MCA / Zorro / EAO)."""

from .contrastive import (
    ContrastivePair,
    ContrastiveRecipeLoss,
    clip_loss,
    eao_recipe,
    mca_recipe,
    zorro_recipe,
)

__all__ = ["ContrastivePair", "ContrastiveRecipeLoss", "clip_loss", "eao_recipe", "mca_recipe", "zorro_recipe"]
