"""Reading numeric tables with errors that point at the exact cell.

pandas' own errors ("could not convert string to float") do not say which file, row or column;
a user fixing a spreadsheet needs all three. Every reader here collects every bad cell and
raises one :class:`DataError` listing them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, where

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")


def read_table(path: str | Path, *, header: bool = True) -> pd.DataFrame:
    """A CSV/TSV/parquet file as a DataFrame of strings (CSV) or native types (parquet)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path)
        else:
            sep = "\t" if suffix == ".tsv" else ","
            frame = pd.read_csv(
                path, sep=sep, header=0 if header else None, dtype=str, keep_default_na=False, skip_blank_lines=True
            )
    except pd.errors.EmptyDataError as err:
        raise DataError(f"{path}: the file is empty") from err
    except pd.errors.ParserError as err:
        raise DataError(f"{path}: rows have different numbers of columns ({_first_line(str(err))})") from err
    except (UnicodeDecodeError, OSError, ValueError) as err:
        raise DataError(f"{path}: cannot be read as a table ({_first_line(str(err))})") from err
    if frame.shape[0] == 0:
        raise DataError(f"{path}: the table has no data rows")
    return frame


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def to_numeric_matrix(frame: pd.DataFrame, path: str | Path, *, row_offset: int = 1) -> np.ndarray:
    """Every cell of ``frame`` as float; one error listing all non-numeric, empty or NaN cells.

    ``row_offset`` converts 0-based data rows to the file's 1-based line numbers (1 when the
    file has no header, 2 when it has one).
    """
    if all(pd.api.types.is_numeric_dtype(t) for t in frame.dtypes):
        values = frame.to_numpy(dtype=np.float64)
        raw = None
    else:
        raw = frame.astype(str).apply(lambda c: c.str.strip())
        values = raw.apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        problems = []
        for r, c in zip(*np.nonzero(bad)):
            column = frame.columns[c]
            label = column if isinstance(column, str) else int(c) + 1
            cell = None if raw is None else raw.iat[r, c]
            if cell is None or cell.lower() in ("nan", "na", "inf", "-inf", "infinity"):
                why = f"value is {cell if cell is not None else values[r, c]} (NaN/inf not allowed)"
            elif cell == "":
                why = "empty cell (expected a number)"
            else:
                why = f"{cell!r} is not a number"
            problems.append(f"{where(path, int(r) + row_offset, label)}: {why}")
        raise DataError(f"{path}: {len(problems)} cell(s) are not finite numbers", problems)
    return values.astype(np.float32)


def read_numeric_matrix(path: str | Path, *, header: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """A headerless (MOGONET) or headed numeric CSV -> ``(array, column names or None)``."""
    frame = read_table(path, header=header)
    names = [str(c) for c in frame.columns] if header else None
    return to_numeric_matrix(frame, path, row_offset=2 if header else 1), names


def read_lines(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a text file (feature-name files)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: file not found")
    lines = [line.strip() for line in path.read_text().splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        raise DataError(f"{path}: the file is empty")
    return lines


def duplicated_ids(ids: list[str], path: str | Path, row_offset: int = 2) -> list[str]:
    """Problems for every repeated sample id (with the rows where it repeats)."""
    seen: dict[str, int] = {}
    problems = []
    for i, sid in enumerate(ids):
        if sid in seen:
            problems.append(
                f"{where(path, i + row_offset)}: sample id {sid!r} repeats row {seen[sid] + row_offset}"
            )
        else:
            seen[sid] = i
    return problems
