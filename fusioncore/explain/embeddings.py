"""Downstream evaluation of fusion embeddings (spec §1a, "Downstream evaluation").

* **Retrieval**: for modality m, each test sample with m present queries with its ``z_m``; the
  candidates are the fusion embeddings of the whole test pool (the dev notebook's pool);
  ``rank(i)`` = number of candidates strictly more cosine-similar than sample i's own fusion
  embedding. Reported: median rank, R@1 = P(rank = 0), R@5 = P(rank < 5), R@10 = P(rank < 10).
* **Probes** on ``z_fusion`` only, trained on the train split and scored on the test split:
  linear (``Linear(D, n_out)``) or MLP (``D -> 256 -> ReLU -> dropout 0.1 -> n_out``), AdamW with
  a cosine schedule and warm-up, gradient clip 2.0. Regression: L1 loss, Pearson correlation.
  Classification: BCE-with-logits on one-hot targets (a single positive-class logit for 2
  classes), with binary F1 / AUROC / accuracy over all label cells (micro, as torchmetrics'
  "binary" metrics in the original).
* **Uniformity** (``log mean_{i<j} exp(-2 |x_i - x_j|^2)``) and **alignment**
  (``mean_i |z_m(i) - z_fusion(i)|^2`` over samples with m present), on raw and on
  L2-normalised embeddings (Wang & Isola 2020).
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import f1_score
from torch import nn

from ..metrics import binary_auroc

ProbeKind = Literal["linear", "mlp"]
TaskKind = Literal["classification", "regression"]


def _t(x) -> torch.Tensor:
    return torch.as_tensor(np.asarray(x), dtype=torch.float32)


def retrieval_metrics(query: np.ndarray, candidates: np.ndarray, rows: np.ndarray | None = None) -> dict[str, float]:
    """Rank of each query's own candidate among all ``candidates`` by cosine similarity.

    query ``(N, D)`` (e.g. ``z_m``), candidates ``(N, D)`` (``z_fusion``; row i is query i's
    match), rows ``(N,)`` bool: which queries count (m present). Every candidate stays in the pool.
    """
    q, c = F.normalize(_t(query), dim=-1), F.normalize(_t(candidates), dim=-1)
    if q.shape != c.shape:
        raise ValueError(f"retrieval: query {tuple(q.shape)} and candidates {tuple(c.shape)} must have the same shape")
    idx = np.arange(q.shape[0]) if rows is None else np.flatnonzero(np.asarray(rows, dtype=bool))
    if idx.size == 0:
        return {"median_rank": float("nan"), "r1": float("nan"), "r5": float("nan"), "r10": float("nan"), "n": 0}
    sim = q[idx] @ c.T  # (n, N)
    own = sim[torch.arange(idx.size), torch.as_tensor(idx)]
    rank = (sim > own[:, None]).sum(dim=1).numpy()
    return {
        "median_rank": float(np.median(rank)),
        "r1": float(np.mean(rank == 0)),
        "r5": float(np.mean(rank < 5)),
        "r10": float(np.mean(rank < 10)),
        "n": int(idx.size),
    }


def uniformity(x: np.ndarray, t: float = 2.0, normalize: bool = False) -> float:
    """``log mean_{i<j} exp(-t |x_i - x_j|^2)`` over all pairs of rows of ``x`` ``(N, D)``."""
    v = _t(x)
    if normalize:
        v = F.normalize(v, dim=-1)
    if v.shape[0] < 2:
        return float("nan")
    d2 = torch.pdist(v, p=2).pow(2)
    return float(torch.logsumexp(-t * d2, dim=0) - math.log(d2.numel()))


def alignment(a: np.ndarray, b: np.ndarray, rows: np.ndarray | None = None, alpha: float = 2.0, normalize: bool = False) -> float:
    """``mean_i |a_i - b_i|^alpha`` over ``rows`` (e.g. samples where a's modality is present)."""
    x, y = _t(a), _t(b)
    if normalize:
        x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    if rows is not None:
        keep = torch.as_tensor(np.asarray(rows, dtype=bool))
        x, y = x[keep], y[keep]
    if x.shape[0] == 0:
        return float("nan")
    return float((x - y).norm(dim=1).pow(alpha).mean())


class _MLPProbe(nn.Module):
    def __init__(self, dim: int, n_out: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, 256), nn.ReLU(), nn.Dropout(0.1), nn.Linear(256, n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _targets(y: np.ndarray, task: TaskKind, n_classes: int | None) -> torch.Tensor:
    if task == "regression":
        t = _t(y)
        return t[:, None] if t.dim() == 1 else t
    labels = torch.as_tensor(np.asarray(y), dtype=torch.long)
    k = int(n_classes or int(labels.max()) + 1)
    onehot = F.one_hot(labels, k).float()
    return onehot[:, 1:] if k == 2 else onehot  # binary: one positive-class logit


def train_probe(
    train_x: np.ndarray,
    train_y: np.ndarray,
    test_x: np.ndarray,
    test_y: np.ndarray,
    *,
    kind: ProbeKind = "linear",
    task: TaskKind = "classification",
    n_classes: int | None = None,
    epochs: int = 300,
    lr: float = 1e-3,
    batch_size: int = 1024,
    warmup_steps: int = 10,
    weight_decay: float = 1e-2,
    seed: int = 0,
) -> dict[str, float]:
    """Fit a probe on ``train_x`` -> ``train_y`` and score it on the test split.

    Classification returns ``f1``, ``auroc``, ``accuracy`` (binary metrics over all one-hot
    cells; with 2 classes that is the positive class); regression returns ``pcc`` and ``l1``.
    The original trains far longer (5120-10001 epochs at lr 1e-5/1e-4); ``epochs``/``lr`` are
    scaled for small data, and the value after the last epoch is reported.
    """
    if kind not in ("linear", "mlp"):
        raise ValueError(f"probe kind must be 'linear' or 'mlp', got {kind!r}")
    if task not in ("classification", "regression"):
        raise ValueError(f"probe task must be 'classification' or 'regression', got {task!r}")
    torch.manual_seed(seed)
    xtr, xte = _t(train_x), _t(test_x)
    if n_classes is None and task == "classification":
        n_classes = int(max(np.max(train_y), np.max(test_y))) + 1
    ytr, yte = _targets(train_y, task, n_classes), _targets(test_y, task, n_classes)
    n_out = ytr.shape[1]
    probe = nn.Linear(xtr.shape[1], n_out) if kind == "linear" else _MLPProbe(xtr.shape[1], n_out)
    opt = torch.optim.AdamW(probe.parameters(), lr=lr, weight_decay=weight_decay)
    steps_per_epoch = max(1, math.ceil(xtr.shape[0] / batch_size))
    total = epochs * steps_per_epoch
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt,
        lambda s: (s + 1) / max(warmup_steps, 1) if s < warmup_steps
        else 0.5 * (1 + math.cos(math.pi * min((s - warmup_steps) / max(total - warmup_steps, 1), 1.0))),
    )
    loss_fn = nn.L1Loss() if task == "regression" else nn.BCEWithLogitsLoss()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        probe.train()
        for idx in torch.randperm(xtr.shape[0], generator=gen).split(batch_size):
            opt.zero_grad()
            loss = loss_fn(probe(xtr[idx]), ytr[idx])
            loss.backward()
            nn.utils.clip_grad_norm_(probe.parameters(), 2.0)
            opt.step()
            sched.step()
    probe.eval()
    with torch.no_grad():
        return _probe_scores(probe(xte), yte, task)


def _probe_scores(out: torch.Tensor, yte: torch.Tensor, task: TaskKind) -> dict[str, float]:
    """Regression: ``pcc``, ``l1``; classification: ``f1``, ``auroc``, ``accuracy`` over all one-hot cells."""
    if task == "regression":
        p, y = out.flatten().numpy(), yte.flatten().numpy()
        pcc = float(np.corrcoef(p, y)[0, 1]) if p.std() > 0 and y.std() > 0 else float("nan")
        return {"pcc": pcc, "l1": float(np.abs(p - y).mean())}
    prob = torch.sigmoid(out).flatten().numpy()
    truth = yte.flatten().numpy().astype(int)
    pred = (prob >= 0.5).astype(int)
    return {"f1": float(f1_score(truth, pred, zero_division=0)), "auroc": binary_auroc(prob, truth),
            "accuracy": float((pred == truth).mean())}


def embed(model, data, *, batch_size: int = 64) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Embeddings (name -> ``(N, D)``) and presence ``(N, M)`` of a dataset, through the model's preprocessing."""
    from ..training import predict

    pred = predict(model, data, batch_size=batch_size)
    emb = {k: v.numpy() for k, v in pred.output.embeddings.items()}
    if not emb:
        raise ValueError(f"method {model.method!r} returns no embeddings; embedding evaluation needs mca, zorro or eao")
    return emb, pred.output.present.numpy()


def embedding_metrics(emb: dict[str, np.ndarray], present: np.ndarray, modalities: list[str]) -> dict[str, float]:
    """Retrieval per modality, uniformity and alignment (raw and ``norm_``) of one split."""
    out: dict[str, float] = {}
    fusion = emb["fusion"]
    any_present = present.any(axis=1)
    for j, name in enumerate(modalities):
        here = present[:, j]
        for key, value in retrieval_metrics(emb[name], fusion, here).items():
            out[f"retrieval/{name}/{key}"] = value
        for norm in (False, True):
            prefix = "norm_" if norm else ""
            out[f"{prefix}alignment/{name}"] = alignment(emb[name], fusion, here, normalize=norm)
            out[f"{prefix}uniformity/{name}"] = uniformity(emb[name][here], normalize=norm)
    for norm in (False, True):
        prefix = "norm_" if norm else ""
        out[f"{prefix}uniformity/fusion"] = uniformity(fusion[any_present], normalize=norm)
        out[f"{prefix}alignment/mean"] = float(np.nanmean([out[f"{prefix}alignment/{m}"] for m in modalities]))
        out[f"{prefix}uniformity/mean"] = float(np.nanmean([out[f"{prefix}uniformity/{m}"] for m in modalities]))
    for key in ("median_rank", "r1", "r5", "r10"):
        out[f"retrieval/mean/{key}"] = float(np.nanmean([out[f"retrieval/{m}/{key}"] for m in modalities]))
    return out


def evaluate_embedding_model(
    model,
    train_data,
    test_data,
    *,
    probes: tuple[ProbeKind, ...] = ("linear", "mlp"),
    probe_epochs: int = 300,
    probe_lr: float = 1e-3,
    regression_targets: tuple[np.ndarray, np.ndarray] | None = None,
    seed: int = 0,
) -> dict[str, float]:
    """Everything of spec §1a's downstream evaluation for one trained ``mca``/``zorro``/``eao`` model.

    Retrieval / uniformity / alignment on the test split; probes on ``z_fusion`` trained on the
    train split (classification on the dataset labels; regression on ``regression_targets``
    ``(train (N,), test (N,))`` when given). Keys are flat, e.g. ``"retrieval/rna/r1"``,
    ``"probe/linear/f1"``.
    """
    tr_emb, _ = embed(model, train_data)
    te_emb, te_present = embed(model, test_data)
    out = embedding_metrics(te_emb, te_present, list(model.modality_names))
    for kind in probes:
        if train_data.labels is not None and test_data.labels is not None:
            res = train_probe(
                tr_emb["fusion"], train_data.labels, te_emb["fusion"], test_data.labels, kind=kind,
                task="classification", n_classes=model.schema.n_classes, epochs=probe_epochs, lr=probe_lr, seed=seed,
            )
            out.update({f"probe/{kind}/{k}": v for k, v in res.items()})
        if regression_targets is not None:
            res = train_probe(
                tr_emb["fusion"], regression_targets[0], te_emb["fusion"], regression_targets[1], kind=kind,
                task="regression", epochs=probe_epochs, lr=probe_lr, seed=seed,
            )
            out.update({f"probe/{kind}/{k}": v for k, v in res.items()})
    return out


__all__ = [
    "alignment",
    "embed",
    "embedding_metrics",
    "evaluate_embedding_model",
    "retrieval_metrics",
    "train_probe",
    "uniformity",
]
