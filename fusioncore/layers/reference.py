"""Dense masked reference of the MCA / Zorro / EAO forward pass (as the original code computes it).

The whole ``[S x S]`` score matrix is formed with ``einsum`` and the softmax is taken over all
``S`` keys with the forbidden ones masked (the original's ``masked_fill``), through the shared
:func:`~fusioncore.layers.attention.masked_softmax`; unlike the original, a query whose keys are
all masked outputs zeros instead of the uniform softmax.
It reuses the model's own weights, so the block-sparse model and this reference must agree to
float tolerance: the tests check it, and ``benchmarks/bench_mca_attention.py`` times both.
It is deliberately the slow, memory-hungry formulation: use it only to check and to compare.
"""

from __future__ import annotations

import torch
from torch import Tensor

from ..types import Batch
from .attention import Attention, _merge, masked_softmax
from .masks import attention_mask, key_valid, make_layout, pooling_mask
from .pooling import masked_mean


def dense_attention(attn: Attention, x: Tensor, mask: Tensor, context: Tensor | None = None) -> Tensor:
    """``x`` ``(B, Sq, D)`` queries over ``context`` (default ``x``) ``(B, Sk, D)``; ``mask`` ``(B, Sq, Sk)``."""
    ctx = x if context is None else context
    q, _, _ = attn.project(x)
    _, k, v = attn.project(ctx)
    scores = torch.einsum("bhid,bhjd->bhij", q, k) * (q.shape[-1] ** -0.5)
    probs = masked_softmax(scores, mask[:, None])  # all-masked rows -> 0
    out = torch.einsum("bhij,bhjd->bhid", probs, v)
    return attn.to_out(_merge(out))


def dense_transformer(transformer, x: Tensor, mask: Tensor) -> Tensor:
    """The :class:`MCATransformer` stack on a dense ``(B, S, D)`` sequence with ``(B, S, S)`` mask."""
    for layer in transformer.layers:
        x = layer.norm(x)
        x = dense_attention(layer.attn, x, mask) + x
        x = layer.norm(x)
        x = layer.ff(x) + x
    return transformer.final_norm(x)


@torch.no_grad()
def dense_forward(model, batch: Batch) -> dict[str, Tensor]:
    """Reference embeddings and ``"logits"`` of an ``mca`` / ``zorro`` / ``eao`` model."""
    tokens, valid = model.encode(batch)
    b = batch.size
    if model.mode == "none":
        pooled = []
        for p in model.passes:
            x = torch.cat([tokens[j] for j in p], dim=1)
            v = torch.cat([valid[j] for j in p], dim=1)
            mask = v[:, None, :].expand(-1, x.shape[1], -1)
            y = dense_transformer(model.transformer, x, mask)
            pooled.append(masked_mean(y, v))
        emb = model.embeddings_from_passes(pooled, batch.present)
    else:
        layout = model.layout
        x = torch.cat(tokens + [model.fusion_tokens.unsqueeze(0).expand(b, -1, -1)], dim=1)
        kv = key_valid(layout, valid)
        mask = attention_mask(layout).to(x.device)[None] & kv[:, None, :]
        y = dense_transformer(model.transformer, x, mask)
        pool = model.pooling
        queries = pool.queries.unsqueeze(0).expand(b, -1, -1)
        pmask = pooling_mask(layout).to(x.device)[None] & kv[:, None, :]
        pooled = dense_attention(pool.attn, queries, pmask, context=y) + pool.queries
        emb = model.embeddings_from_pooled(pooled, batch.present)
    emb["logits"] = model.head(emb["fusion"])
    return emb


__all__ = ["dense_attention", "dense_forward", "dense_transformer", "make_layout"]
