"""One benchmark for every method: train, remove modalities at test time, rank.

For each method and seed the model is trained once on the (complete) training split with its
registered recipe; it is then evaluated on the test split with modalities removed at each
missing rate. The removed pattern is a pure function of ``(test presence, rate, seed)``
(:func:`removal_masks`), so every method sees exactly the same removed entries.

Outputs in ``out_dir``:

* ``records.csv``  one row per (method, seed, missing rate): realised removed fraction, train
  seconds and every metric of :func:`fusioncore.metrics.classification_metrics`;
* ``summary.csv``  mean, std (ddof=1) and count per (method, missing rate, metric);
* ``benchmark.md`` the markdown table (mean ± std in %, with the train recipe of each method);
* ``figures/metric_vs_missing__<metric>.{png,svg,html,csv,json}`` plotly figures (built and
  exported by :mod:`fusioncore.viz`, the only plotly-importing module).
"""

from __future__ import annotations

import dataclasses
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from .config import TrainConfig, override
from .data.dataset import DatasetSplits
from .registry import create_model, get_method

DEFAULT_METRICS = ("acc", "f1", "f1_macro", "auc")
FIGURE_FORMATS = ("png", "svg", "html", "csv", "json")


@dataclass
class BenchmarkResult:
    """What :func:`run_benchmark` produced (frames in memory, paths on disk)."""

    records: pd.DataFrame  # one row per (method, seed, missing rate)
    summary_table: pd.DataFrame  # method, missing_rate, metric, mean, std, n
    markdown: str
    paths: dict[str, Path] = field(default_factory=dict)
    figures: dict[str, dict[str, Path]] = field(default_factory=dict)
    train_configs: dict[str, TrainConfig] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        """A JSON-able digest for the CLI: output paths and mean/std per (method, rate, metric)."""
        rows = self.summary_table.astype(object).where(self.summary_table.notna(), None)
        return {
            "paths": {k: str(v) for k, v in self.paths.items()},
            "figures": {m: {f: str(p) for f, p in fp.items()} for m, fp in self.figures.items()},
            "results": rows.to_dict(orient="records"),
        }


# -- the removed pattern ------------------------------------------------------------------------
def removal_masks(present: np.ndarray, rate: float, seed: int) -> np.ndarray:
    """The presence matrix after removing a fraction ``rate`` of the present entries.

    present: ``(N, M)`` bool. Exactly ``round(rate * present.sum())`` present (sample, modality)
    entries are removed, chosen uniformly at random under one constraint: a sample never loses
    its last present modality (a prediction stays defined). The walk is a seeded random order
    of the present entries; an entry is removed when the quota is not met and its sample still
    has another modality. Hence the result depends only on ``(present, rate, seed)`` (identical
    for every method) and, for one seed, the entries removed at a lower rate are also removed
    at any higher rate (nested patterns, so curves are monotone in what is hidden).

    Raises ``ValueError`` if ``rate`` is outside ``[0, 1)`` or the quota cannot be met without
    emptying a sample (for complete data with ``M`` modalities the maximum is ``(M - 1) / M``).
    """
    present = np.asarray(present)
    if present.dtype != bool or present.ndim != 2:
        raise ValueError(f"removal_masks: present must be a (samples, modalities) bool array, got {present.dtype} {present.shape}")
    if not 0.0 <= float(rate) < 1.0:  # also refuses NaN
        raise ValueError(f"removal_masks: missing rate must be in [0, 1), got {rate}")
    out = present.copy()
    total = int(present.sum())
    quota = int(round(rate * total))
    removable = total - int(present.any(axis=1).sum())
    if quota > removable:
        m = present.shape[1]
        raise ValueError(
            f"removal_masks: missing rate {rate} asks to remove {quota} of {total} present entries, but at most "
            f"{removable} can go without leaving a sample with no modality (max rate {removable / max(total, 1):.3f}; "
            f"{(m - 1) / m:.3f} for complete data with {m} modalities)"
        )
    if quota == 0:
        return out
    rows, cols = np.nonzero(present)
    order = np.random.default_rng(seed).permutation(len(rows))
    left = present.sum(axis=1)
    removed = 0
    for i in order:
        r = rows[i]
        if left[r] > 1:
            out[r, cols[i]] = False
            left[r] -= 1
            removed += 1
            if removed == quota:
                break
    return out


def select_modalities(data: DatasetSplits, names: Sequence[str] | str) -> DatasetSplits:
    """The same splits restricted to modalities ``names`` (e.g. the tabular views of a cohort
    that also has images, for methods that take tabular data only)."""
    return data.select(names)


# -- argument parsing helpers (the CLI passes strings) -------------------------------------------
def parse_methods(text: str | Sequence[str]) -> list[str]:
    """``"early,late"`` (or a list) -> validated registered method names, order kept."""
    names = [t.strip() for t in text.split(",")] if isinstance(text, str) else [str(t).strip() for t in text]
    names = [n for n in names if n]
    if not names:
        raise ValueError("--methods: give at least one method, e.g. early,late,hybrid")
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"--methods: {dupes} listed more than once")
    for n in names:
        get_method(n)  # raises ValueError naming the available methods
    return names


def parse_rates(text: str | Iterable[float]) -> list[float]:
    """``"0,0.3,0.6"`` (or numbers) -> sorted unique missing rates in ``[0, 1)``."""
    parts = text.split(",") if isinstance(text, str) else list(text)
    rates = []
    for p in parts:
        if isinstance(p, str) and not p.strip():
            continue
        try:
            r = float(p)
        except (TypeError, ValueError) as err:
            raise ValueError(f"--missing: {p!r} is not a number (expected rates like 0,0.3,0.6)") from err
        if not 0.0 <= r < 1.0:
            raise ValueError(f"--missing: rate {r} is outside [0, 1)")
        rates.append(r)
    if not rates:
        raise ValueError("--missing: give at least one missing rate, e.g. 0,0.3,0.6")
    return sorted(set(rates))


def parse_seeds(seeds: int | Iterable[int]) -> list[int]:
    """``5`` -> ``[0, 1, 2, 3, 4]``; an iterable of ints is kept as given."""
    if isinstance(seeds, (int, np.integer)):
        if seeds < 1:
            raise ValueError(f"--seeds: need at least 1 seed, got {seeds}")
        return list(range(int(seeds)))
    out = [int(s) for s in seeds]
    if not out or len(set(out)) != len(out):
        raise ValueError(f"seeds: expected distinct integers, got {out}")
    return out


def train_config_for(method: str, seed: int, train_overrides: Mapping[str, Mapping[str, Any]] | None) -> TrainConfig:
    """The method's registered recipe with ``train_overrides['*']`` then ``train_overrides[method]`` applied."""
    cfg = get_method(method).train_defaults
    known = {f.name for f in dataclasses.fields(TrainConfig)}
    for key in ("*", method):
        changes = dict((train_overrides or {}).get(key, {}))
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"train_overrides[{key!r}]: unknown TrainConfig field(s) {unknown}; known: {sorted(known)}")
        cfg = override(cfg, **changes)
    return dataclasses.replace(cfg, seed=seed)


# -- the benchmark ------------------------------------------------------------------------------
@dataclass(frozen=True)
class BenchmarkSettings:
    """What :func:`run_benchmark` runs and how; checked and normalised when made, so a bad
    setting is refused (naming it) before any training.

    methods:         registered names (or ``"early,late"``); each must support the data's modality kinds.
    missing_rates:   fractions of present test entries removed (see :func:`removal_masks`), or ``"0,0.3"``.
    seeds:           a count (``5`` = seeds 0..4) or explicit seeds; seed ``s`` sets the model
                     init, the training order and the removed pattern.
    out_dir:         where the records, summary, table and figures are written.
    train_overrides: ``{"*": {...}, "<method>": {...}}`` TrainConfig fields changed for all / one method
                     (e.g. ``{"mmdynamics": {"epochs": 500}}``); the table states each recipe used.
    model_overrides: ``{"<method>": {...}}`` model config fields.
    epochs:          shorthand for ``train_overrides["*"]["epochs"]`` (every method; stated in the table).
    metrics:         the metrics summarised, tabled and plotted (those the evaluation gives).
    figure_formats:  formats of each metric's figure (none: no figures).
    title:           the markdown table's heading.
    data_label:      how the data is named in the markdown (e.g. the CLI's ``--data`` argument).
    device:          where models train.
    num_threads:     torch CPU threads during the run (restored after). 1 is fastest for these small
                     models on a shared/busy CPU, where extra threads mostly spin.
    progress:        True prints one line per trained model to stderr; a callable receives the lines.
    """

    methods: Sequence[str] | str
    missing_rates: Sequence[float] | str = (0.0, 0.3, 0.6)
    seeds: int | Sequence[int] = 5
    out_dir: str | Path = "benchmark"
    train_overrides: Mapping[str, Mapping[str, Any]] | None = None
    model_overrides: Mapping[str, Mapping[str, Any]] | None = None
    epochs: int | None = None
    metrics: Sequence[str] = DEFAULT_METRICS
    figure_formats: Sequence[str] = FIGURE_FORMATS
    title: str | None = None
    data_label: str | None = None
    device: str = "cpu"
    num_threads: int | None = None
    progress: bool | Callable[[str], None] = True

    def __post_init__(self) -> None:
        if self.num_threads is not None and self.num_threads < 1:
            raise ValueError(f"num_threads must be >= 1, got {self.num_threads}")
        if self.epochs is not None and self.epochs < 1:
            raise ValueError(f"epochs must be >= 1, got {self.epochs}")
        normalised = {"methods": tuple(parse_methods(self.methods)), "missing_rates": tuple(parse_rates(self.missing_rates)),
                      "seeds": tuple(parse_seeds(self.seeds)), "out_dir": Path(self.out_dir)}
        for name, value in normalised.items():
            object.__setattr__(self, name, value)  # frozen: set once, here

    def train_overrides_for_run(self) -> Mapping[str, Mapping[str, Any]] | None:
        """``train_overrides`` with ``epochs`` folded into ``"*"``."""
        if self.epochs is None:
            return self.train_overrides
        overrides = {k: dict(v) for k, v in (self.train_overrides or {}).items()}
        overrides.setdefault("*", {})["epochs"] = self.epochs
        return overrides


def run_benchmark(data: DatasetSplits, settings: BenchmarkSettings) -> BenchmarkResult:
    """Train every method of ``settings`` for every seed on ``data.train``, evaluate it at every
    missing rate on ``data.test`` (which needs labels), write the results to ``settings.out_dir``."""
    import torch

    previous_threads = torch.get_num_threads()
    if settings.num_threads is not None:
        torch.set_num_threads(settings.num_threads)
    try:
        return _run(data, settings)
    finally:
        torch.set_num_threads(previous_threads)


def _check_supported(methods: Sequence[str], schema) -> None:
    """Refuse, before any training, a method that does not take one of the data's modality kinds."""
    kinds = sorted({m.kind for m in schema.modalities})
    for name in methods:
        supported = get_method(name).supports
        bad = [k for k in kinds if k not in supported]
        if bad:
            raise ValueError(
                f"method {name!r} supports {', '.join(supported)} modalities; the data also has {', '.join(bad)} "
                f"({', '.join(m.name for m in schema.modalities if m.kind in bad)})"
            )


def _run(data: DatasetSplits, s: BenchmarkSettings) -> BenchmarkResult:
    """:func:`run_benchmark` once the thread count is set: check, train and score, write."""
    if data.test.labels is None:
        raise ValueError(f"{data.test.source or 'test split'}: has no labels, so it cannot be scored")
    _check_supported(s.methods, data.schema)
    masks = {(r, seed): removal_masks(data.test.present, r, seed) for r in s.missing_rates for seed in s.seeds}
    s.out_dir.mkdir(parents=True, exist_ok=True)
    records, train_configs = _train_and_score(data, s, masks)
    return _write_results(data, s, pd.DataFrame.from_records(records), train_configs)


def _train_and_score(data: DatasetSplits, s: BenchmarkSettings, masks: dict) -> tuple[list[dict], dict[str, TrainConfig]]:
    """One record per (method, seed, missing rate); ``records.csv`` rewritten after every model."""
    from .training import evaluate_model, fit, seed_everything

    log = _logger(s.progress)
    train_overrides = s.train_overrides_for_run()
    records, train_configs = [], {}
    n_base = int(data.test.present.sum())
    for name in s.methods:
        for seed in s.seeds:
            cfg = train_config_for(name, seed, train_overrides)
            train_configs[name] = cfg
            seed_everything(seed)
            model = create_model(name, data.schema, **dict((s.model_overrides or {}).get(name, {})))
            start = time.perf_counter()
            try:
                fit(model, data.train, cfg, device=s.device, progress=False)
            except (ValueError, FloatingPointError) as err:
                raise ValueError(f"benchmark: training {name!r} with seed {seed} failed: {err}") from err
            seconds = time.perf_counter() - start
            for rate in s.missing_rates:
                test = data.test.with_present(masks[(rate, seed)])
                scores = evaluate_model(model, test, tcp=False)
                removed = 1.0 - int(test.present.sum()) / max(n_base, 1)
                records.append({"method": name, "seed": seed, "missing_rate": rate, "removed_fraction": removed,
                                "train_seconds": seconds, **{k: v for k, v in scores.items() if np.isscalar(v)}})
            # Written after every model, so an interrupted run keeps what it has measured.
            pd.DataFrame.from_records(records).to_csv(s.out_dir / "records.csv", index=False)
            last = records[-len(s.missing_rates):]
            log(f"{name} seed {seed}: trained in {seconds:.1f} s; "
                + ", ".join(f"acc@{r['missing_rate']:g}={r['acc']:.3f}" for r in last))
    return records, train_configs


def _write_results(data: DatasetSplits, s: BenchmarkSettings, frame: pd.DataFrame,
                   train_configs: dict[str, TrainConfig]) -> BenchmarkResult:
    """The summary, the markdown table and the figures, on disk and in the result."""
    out = s.out_dir
    metrics = [m for m in s.metrics if m in frame.columns]
    summary = summarise(frame, metrics)
    label = s.data_label or data.test.source
    markdown = markdown_table(summary, frame, metrics, train_configs, title=s.title, source=label)
    paths = {"records": out / "records.csv", "summary": out / "summary.csv", "markdown": out / "benchmark.md"}
    frame.to_csv(paths["records"], index=False)
    summary.to_csv(paths["summary"], index=False)
    paths["markdown"].write_text(markdown)
    figures = export_figures(frame, metrics, out / "figures", s.figure_formats, provenance_extra={
        "methods": list(s.methods), "missing_rates": list(s.missing_rates), "seeds": list(s.seeds), "data": label,
    }, label=label) if s.figure_formats else {}
    return BenchmarkResult(records=frame, summary_table=summary, markdown=markdown, paths=paths, figures=figures,
                           train_configs=train_configs)


def summarise(records: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Long frame: ``method, missing_rate, metric, mean, std, n`` (std with ddof=1; NaN for one seed)."""
    long = records.melt(id_vars=["method", "seed", "missing_rate"], value_vars=list(metrics) + ["train_seconds"],
                        var_name="metric", value_name="value")
    order = {m: i for i, m in enumerate(dict.fromkeys(records["method"]))}
    agg = long.groupby(["method", "missing_rate", "metric"], sort=False)["value"].agg(["mean", "std", "count"])
    agg = agg.reset_index().rename(columns={"count": "n"})
    agg["_order"] = agg["method"].map(order)
    return agg.sort_values(["_order", "missing_rate", "metric"]).drop(columns="_order").reset_index(drop=True)


def _cell(mean: float, std: float, scale: float = 100.0, digits: int = 1) -> str:
    if math.isnan(mean):
        return "n/a"
    if math.isnan(std):
        return f"{mean * scale:.{digits}f}"
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def markdown_table(summary: pd.DataFrame, records: pd.DataFrame, metrics: Sequence[str],
                   train_configs: Mapping[str, TrainConfig], *, title: str | None = None, source: str = "") -> str:
    """The benchmark as markdown: one row per (method, missing rate), metrics in % as mean ± std."""
    n_seeds = records.groupby("method")["seed"].nunique().max()
    lines = [f"## {title}" if title else "## Benchmark: metric vs test-time missing rate", ""]
    if source:
        lines += [f"Data: `{source}`.", ""]
    lines += [
        f"Metrics in %, mean ± std over {n_seeds} seed(s) (std with ddof=1). The missing rate is the fraction of "
        "present test (sample, modality) entries removed at test time (same seeded pattern for every method; "
        "no sample loses its last modality); `removed` is the realised fraction.",
        "",
        "| method | missing rate | removed | " + " | ".join(metrics) + " | train s |",
        "|---|---|---|" + "---|" * len(metrics) + "---|",
    ]
    stat = summary.set_index(["method", "missing_rate", "metric"])
    removed = records.groupby(["method", "missing_rate"])["removed_fraction"].mean()
    for (method, rate), _ in records.groupby(["method", "missing_rate"], sort=False):
        cells = [_cell(*stat.loc[(method, rate, m), ["mean", "std"]]) for m in metrics]
        secs = stat.loc[(method, rate, "train_seconds"), "mean"]
        lines.append(f"| {method} | {rate:g} | {removed[(method, rate)]:.2f} | " + " | ".join(cells) + f" | {secs:.1f} |")
    lines += ["", "Train recipes (registered defaults unless overridden):", ""]
    for method, cfg in train_configs.items():
        batch = "full batch" if not cfg.batch_size else f"batch {cfg.batch_size}"
        lines.append(
            f"- `{method}`: {cfg.epochs} epochs, {cfg.optimizer} lr {cfg.lr:g}, wd {cfg.weight_decay:g}, {batch}, "
            f"scheduler {cfg.scheduler}, modality dropout {cfg.modality_dropout:g}"
        )
    return "\n".join(lines) + "\n"


def export_figures(records: pd.DataFrame, metrics: Sequence[str], out_dir: str | Path, formats: Sequence[str],
                   provenance_extra: Mapping[str, Any] | None = None, *, html_plotlyjs: bool | str = "cdn",
                   stem_prefix: str = "metric_vs_missing", label: str | None = None) -> dict[str, dict[str, Path]]:
    """One plotly figure per metric (mean ± std against missing rate, one line per method).

    Also usable on a saved ``records.csv`` (re-plot without re-training). ``html_plotlyjs="cdn"``
    keeps the HTML small (plotly.js is loaded from the CDN); ``True`` embeds it (offline, ~4 MB).
    """
    from .viz import export_figure, missing_rate_data, missing_rate_figure, provenance

    out = {}
    for metric in metrics:
        n = records["seed"].nunique()
        title = f"{metric} vs test-time missing rate (mean ± std, {n} seed{'s' if n != 1 else ''})" + (f"<br><sub>{label}</sub>" if label else "")
        fig = missing_rate_figure(records, value=metric, metric_label=metric, title=title)
        data = missing_rate_data(records, value=metric)
        record = provenance(view=f"benchmark_{metric}", extra=provenance_extra)
        result = export_figure(fig, data, record, out_dir, f"{stem_prefix}__{metric}", formats, timeout_s=60,
                               html_plotlyjs=html_plotlyjs)
        out[metric] = result.paths
    return out


def _logger(progress: bool | Callable[[str], None]) -> Callable[[str], None]:
    if callable(progress):
        return progress
    if progress:
        return lambda line: print(line, file=sys.stderr, flush=True)
    return lambda line: None


__all__ = [
    "BenchmarkResult",
    "BenchmarkSettings",
    "markdown_table",
    "parse_methods",
    "parse_rates",
    "parse_seeds",
    "removal_masks",
    "run_benchmark",
    "select_modalities",
    "summarise",
    "train_config_for",
]
