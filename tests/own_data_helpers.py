"""Small cohorts in the documented layouts (README: ``table:`` folders, ``mogonet:`` folders), and
the CLI run in-process, for the bad-input tests (issue 14, items 3 and 4)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fusioncore.cli.main import main


def write_cohort(folder: Path, n: int = 30, seed: int = 0, *, labels: list[str] | None = None,
                 dims: dict[str, int] | None = None, ids: dict[str, list[str]] | None = None) -> Path:
    """``labels.csv`` (sample_id,label) and one table per modality keyed by ``sample_id``.

    ``labels`` overrides the label column (as written in the file); ``ids`` a modality's ids.
    """
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sample_ids = [f"S{i:04d}" for i in range(n)]
    if labels is None:
        labels = ["AD" if i % 2 else "NC" for i in range(n)]
    (folder / "labels.csv").write_text("sample_id,label\n" + "".join(f"{s},{y}\n" for s, y in zip(sample_ids, labels)))
    signal = np.array([1.0 if y in ("AD", "1") else 0.0 for y in labels])
    for name, d in (dims or {"rna": 4, "prot": 3}).items():
        x = rng.normal(size=(n, d)) + signal[:, None]
        rows = (ids or {}).get(name, sample_ids)
        body = "".join(f"{s}," + ",".join(f"{v:.4f}" for v in row) + "\n" for s, row in zip(rows, x))
        (folder / f"{name}.csv").write_text("sample_id," + ",".join(f"{name}_g{j}" for j in range(d)) + "\n" + body)
    return folder


def write_mogonet(folder: Path, labels_tr: list[int], n_te: int = 8, dims: tuple[int, ...] = (4, 3), seed: int = 0) -> Path:
    """MOGONET's layout: headerless ``{v}_tr.csv`` / ``{v}_te.csv`` and ``labels_{tr,te}.csv``."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    y = {"tr": np.asarray(labels_tr), "te": np.arange(n_te) % 2}
    for split, lab in y.items():
        np.savetxt(folder / f"labels_{split}.csv", lab.astype(float), fmt="%.1f")
        for v, d in enumerate(dims, 1):
            np.savetxt(folder / f"{v}_{split}.csv", rng.normal(size=(len(lab), d)) + lab[:, None], delimiter=",", fmt="%.4f")
    return folder


def cli(capsys, *args: str) -> tuple[int, str, str]:
    """``fusioncore ARGS`` in this process: (exit status, stdout, stderr)."""
    capsys.readouterr()
    code = main([str(a) for a in args])
    out = capsys.readouterr()
    return code, out.out, out.err


def train(capsys, data: str, out: Path, *extra: str, method: str = "mmdynamics") -> tuple[int, str, str]:
    """``fusioncore train`` for one epoch, quietly (the messages, not the model, are tested)."""
    return cli(capsys, "train", "--method", method, "--data", data, "--out", out, "--epochs", "1", "--quiet", *extra)
