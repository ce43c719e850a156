"""Files of ``fusioncore explain trust``: ``trust.json``, ``trust.csv``, a CSV per sample, figures.

* ``trust.json``: a JSON list, one record per explanation (``explanation``, ``modality``,
  ``randomisation_similarity``, ``deletion_gap`` ``{mean, low, high}``, ``verdict``, ``why``, and
  every other number of :class:`fusioncore.explain.trust.TrustRecord`); NaN is written as null.
* ``trust_run.json``: how it was computed (settings, thresholds, cascade stages, device, seconds).
* ``trust.csv``: the same records as a flat table (the figures' data).
* ``samples/<sample id>.csv``: one row per explanation of that sample: its own numbers, verdict
  and the reasons.
* figures (``trust_gaps`` and ``trust_randomisation``, each with its CSV and provenance JSON).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from .. import viz
from ..explain.trust_assess import TrustReport


def jsonable(value: Any) -> Any:
    """``value`` with numpy scalars/arrays as Python values and NaN / inf as None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return jsonable(value.tolist())
    if isinstance(value, (np.floating, float)):
        return None if not math.isfinite(float(value)) else float(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, Path):
        return str(value)
    return value


def records_json(report: TrustReport) -> list[dict]:
    """The records as JSON-ready dicts (what ``trust.json`` holds)."""
    return [jsonable(r.to_json()) for r in report.records]


def sample_frame(report: TrustReport, index: int) -> pd.DataFrame:
    """One row per explanation of sample ``index`` (explanations of modalities it lacks are left out)."""
    rows = []
    for e in report.explanations:
        per = report.per_sample[e]
        if not per.verdicts[index]:
            continue
        row = {"sample_id": report.sample_ids[index], "explained_class": report.classes[int(report.target[index])],
               "explanation": e.kind, "modality": e.modality, "verdict": per.verdicts[index]}
        row.update({k: float(v[index]) for k, v in per.values.items()})
        row["why"] = " | ".join(c.line for c in per.checks[index])
        rows.append(row)
    return pd.DataFrame(rows)


def run_record(report: TrustReport, checkpoint: Any = None) -> dict:
    """How the report was computed (``trust_run.json``)."""
    return jsonable({"method": report.method, "checkpoint": checkpoint, "n_samples": len(report.sample_ids),
                     "explanations": [f"{e.kind}:{e.modality}" for e in report.explanations],
                     "planted_truth": report.truth, "device": report.device, "seconds": round(report.seconds, 1),
                     "settings": asdict(report.settings), "thresholds": asdict(report.thresholds),
                     "randomisation_stages": [list(s) for s in report.randomisation.stages]})


def write_trust_report(report: TrustReport, out_dir: Any, *, checkpoint: Any = None, config: Any = None,
                       figure_formats: Sequence[str] = ("png", "html", "csv", "json")) -> Path:
    """Write every file listed in the module docstring into ``out_dir``; returns ``trust.json``."""
    out = Path(out_dir)
    (out / "samples").mkdir(parents=True, exist_ok=True)
    records = records_json(report)
    path = out / "trust.json"
    path.write_text(json.dumps(records, indent=2) + "\n")
    (out / "trust_run.json").write_text(json.dumps(run_record(report, checkpoint), indent=2) + "\n")
    table = viz.trust_table_data(records)
    table.to_csv(out / "trust.csv", index=False)
    for i, sid in enumerate(report.sample_ids):
        frame = sample_frame(report, i)
        if len(frame):
            frame.to_csv(out / "samples" / f"{viz.make_export_stem(str(sid))}.csv", index=False)
    if figure_formats:
        _write_figures(report, records, table, out, checkpoint, config, figure_formats)
    return path


def _write_figures(report: TrustReport, records: list[dict], table: pd.DataFrame, out: Path, checkpoint: Any, config: Any,
                   formats: Sequence[str]) -> None:
    prov = lambda view: viz.provenance(view=view, method=report.method, checkpoint=checkpoint, config=config,  # noqa: E731
                                       seed=report.settings.seed, extra={"n_samples": len(report.sample_ids),
                                                                         "settings": asdict(report.settings),
                                                                         "thresholds": asdict(report.thresholds)})
    gaps = viz.trust_gap_figure(table, title=f"Faithfulness of each explanation ({report.method}, {len(report.sample_ids)} samples)")
    viz.export_figure(gaps, table, prov("trust_gaps"), out, viz.make_export_stem("trust_gaps", report.method), formats=formats)
    curve = viz.randomisation_curve_data(records, report.randomisation.stage_labels())
    fig = viz.randomisation_curve_figure(curve, threshold=report.thresholds.randomisation_pass)
    viz.export_figure(fig, curve, prov("trust_randomisation"), out, viz.make_export_stem("trust_randomisation", report.method),
                      formats=formats)
