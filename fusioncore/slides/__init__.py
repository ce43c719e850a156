"""Whole-slide images: open (OpenSlide / tiffslide), find the tissue, stream tiles through a model.

``reader`` opens slides, ``tissue`` masks glass out, ``grid`` places model tiles at the model's
resolution, ``infer`` runs a model on tiles, ``store`` keeps per-tile results resumable on disk,
``stream`` feeds tiles through in batches, ``aggregate`` turns tiles into a slide-level result,
``deepzoom`` cuts viewer tiles and ``synthetic`` writes test slides. Files are written by
:mod:`fusioncore.reports.slide`.
"""

from .reader import SLIDE_SUFFIXES, Slide, SlideError, SlideInfo, open_slide

__all__ = ["SLIDE_SUFFIXES", "Slide", "SlideError", "SlideInfo", "open_slide"]
