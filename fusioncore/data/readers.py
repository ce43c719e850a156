"""Reading numeric tables with errors that point at the exact cell.

pandas' own errors ("could not convert string to float") do not say which file, row or column;
a user fixing a spreadsheet needs all three. Every reader here collects every bad cell and
raises one :class:`DataError` listing them.

CSVs saved by a European Excel are read as they are: a ``;`` (or tab) separator is detected from
the header line, text that is not UTF-8 is decoded as Windows-1252 (latin-1), and decimal commas
(``0,5``) are read as decimal points when the separator is not a comma. What was detected is
recorded in ``frame.attrs["notes"]``, which the loaders pass on as the dataset's notes. A
repeated column name is refused (pandas would rename it ``x.1`` silently), and so is a value
beyond float32, the precision models compute in.
"""

from __future__ import annotations

import csv
import io
import os
import re
import stat
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError, where

TABLE_SUFFIXES = (".csv", ".tsv", ".txt", ".parquet", ".pq")
SEPARATORS = {",": "comma", ";": "semicolon", "\t": "tab"}
_DECIMAL_COMMA = re.compile(r"^[+-]?\d*,\d+(?:[eE][+-]?\d+)?$")
_DECIMAL_POINT = re.compile(r"^[+-]?\d*\.\d+(?:[eE][+-]?\d+)?$")
FLOAT32_MAX = float(np.finfo(np.float32).max)


def check_readable(path: Path, what: str = "file") -> None:
    """Refuse a path that is missing, of the wrong kind or unreadable, saying which.

    "permission denied" is told apart from "not found": a folder on the way that this user may
    not enter makes the path look absent to ``Path.exists``; ``os.stat`` says why.
    """
    try:
        info = os.stat(path)
    except PermissionError as err:
        raise DataError(f"{path}: permission denied (this user may not open a folder on its path)") from err
    except OSError as err:
        raise DataError(f"{path}: {what} not found") from err
    is_dir = stat.S_ISDIR(info.st_mode)
    if what == "folder" and not is_dir:
        raise DataError(f"{path}: not a folder")
    if what == "file" and is_dir:
        raise DataError(f"{path}: is a folder, expected a file")
    if not os.access(path, os.R_OK | (os.X_OK if is_dir else 0)):
        raise DataError(f"{path}: permission denied (this user may not read this {what})")


def source_bytes(source, name: str | Path | None = None) -> tuple[Path, bytes | None]:
    """``(the name messages use, the bytes)`` of a path (bytes None: read from disk), of
    ``bytes`` or of a binary file-like object (an upload), named ``name`` (default: the
    object's ``name``, else ``"upload"``). The name's suffix says the format."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        return Path(str(name or "upload")), bytes(source)
    if hasattr(source, "read"):
        return Path(str(name or getattr(source, "name", None) or "upload")), source.read()
    return Path(source), None


def _decode(path: Path, data: bytes | None = None) -> tuple[str, str | None]:
    """The file's (or the given bytes') text and, when it is not UTF-8, the encoding it was decoded with."""
    try:
        raw = path.read_bytes() if data is None else data
    except PermissionError as err:
        raise DataError(f"{path}: permission denied (this user may not read this file)") from err
    try:
        return raw.decode("utf-8-sig"), None
    except UnicodeDecodeError:
        pass
    try:
        return raw.decode("cp1252"), "Windows-1252 (latin-1)"
    except UnicodeDecodeError:
        return raw.decode("latin-1"), "latin-1"


def _separator(path: Path, text: str) -> str:
    """Tab for .tsv; otherwise the most frequent of comma, semicolon and tab in the header line."""
    if path.suffix.lower() == ".tsv":
        return "\t"
    first = next((line for line in text.splitlines() if line.strip()), "")
    counts = {sep: first.count(sep) for sep in SEPARATORS}
    best = max(counts, key=counts.get)
    return best if counts[best] > counts[","] else ","


def _check_header(path: Path, text: str, sep: str) -> None:
    """Refuse a header naming a column twice (pandas renames the second one ``name.1``)."""
    first = next((line for line in text.splitlines() if line.strip()), "")
    names = [n.strip() for n in next(csv.reader([first], delimiter=sep), [])]
    seen: dict[str, list[int]] = {}
    for k, name in enumerate(names):
        seen.setdefault(name, []).append(k + 1)
    dup = [f"column {name!r} appears {len(cols)} times (columns {', '.join(map(str, cols))})"
           for name, cols in seen.items() if len(cols) > 1]
    if dup:
        raise DataError(f"{path}: the header names a column more than once; every column needs its own name", dup)


def _decimal_commas(frame: pd.DataFrame) -> bool:
    """Convert cells like ``0,5`` to ``0.5`` in place when no cell uses a decimal point."""
    cells = frame.stack() if frame.size else pd.Series(dtype=str)
    comma = cells.str.match(_DECIMAL_COMMA)
    if not comma.any() or cells.str.match(_DECIMAL_POINT).any():
        return False
    for column in frame.columns:
        hit = frame[column].str.match(_DECIMAL_COMMA)
        frame.loc[hit, column] = frame.loc[hit, column].str.replace(",", ".", regex=False)
    return True


def _read_text_table(path: Path, header: bool, data: bytes | None) -> pd.DataFrame:
    text, encoding = _decode(path, data)
    sep = _separator(path, text)
    if header:
        _check_header(path, text, sep)
    frame = pd.read_csv(io.StringIO(text), sep=sep, header=0 if header else None, dtype=str, keep_default_na=False,
                        skip_blank_lines=True)
    notes = []
    if sep != ("\t" if path.suffix.lower() == ".tsv" else ","):
        notes.append(f"{path.name}: read with the {SEPARATORS[sep]} separator {sep!r} (detected from the header line)")
    if encoding:
        notes.append(f"{path.name}: not UTF-8 text; decoded as {encoding}")
    if sep != "," and _decimal_commas(frame):
        notes.append(f"{path.name}: decimal commas read as decimal points (e.g. '0,5' = 0.5)")
    frame.attrs["notes"] = notes
    return frame


def read_table(source, *, header: bool = True, name: str | Path | None = None) -> pd.DataFrame:
    """A CSV/TSV/parquet table as a DataFrame of strings (CSV) or native types (parquet).

    ``source``: a path, or the table's bytes / a binary file-like object (an upload: nothing is
    written to disk) with ``name`` for the format and the messages (see :func:`source_bytes`).
    """
    path, data = source_bytes(source, name)
    if data is None:
        check_readable(path)
    if (path.stat().st_size if data is None else len(data)) == 0:
        raise DataError(f"{path}: the file is empty")
    suffix = path.suffix.lower()
    try:
        if suffix in (".parquet", ".pq"):
            frame = pd.read_parquet(path if data is None else io.BytesIO(data))
            dup = sorted({str(c) for c in frame.columns if list(frame.columns).count(c) > 1})
            if dup:
                raise DataError(f"{path}: column(s) {dup} appear more than once; every column needs its own name")
            frame.attrs["notes"] = []
        else:
            frame = _read_text_table(path, header, data)
    except DataError:
        raise
    except PermissionError as err:
        raise DataError(f"{path}: permission denied (this user may not read this file)") from err
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
    huge = np.isfinite(values) & (np.abs(values) > FLOAT32_MAX)
    if huge.any():
        problems = [f"{where(path, int(r) + row_offset, _label(frame, c))}: {values[r, c]:g} is beyond the float32 range "
                    f"(+-{FLOAT32_MAX:.3g}) models compute in; rescale the column" for r, c in zip(*np.nonzero(huge))]
        raise DataError(f"{path}: {len(problems)} value(s) too large to compute with", problems)
    if bad.any():
        problems = []
        for r, c in zip(*np.nonzero(bad)):
            label = _label(frame, c)
            cell = None if raw is None else raw.iat[r, c]
            if cell is None or cell.lower() in ("nan", "na", "inf", "-inf", "infinity"):
                why = f"value is {cell if cell is not None else values[r, c]} (NaN/inf not allowed)"
            elif cell == "":
                why = "empty cell (expected a number)"
            elif _DECIMAL_COMMA.match(cell):
                why = f"{cell!r} is not a number (a decimal comma? use decimal points, or ';' between columns)"
            else:
                why = f"{cell!r} is not a number"
            problems.append(f"{where(path, int(r) + row_offset, label)}: {why}")
        raise DataError(f"{path}: {len(problems)} cell(s) are not finite numbers", problems)
    return values.astype(np.float32)


def _label(frame: pd.DataFrame, c: int) -> str | int:
    """Column ``c`` as messages name it: its header, or its 1-based number in a headerless file."""
    column = frame.columns[c]
    return column if isinstance(column, str) else int(c) + 1


def read_numeric_matrix(path: str | Path, *, header: bool = False) -> tuple[np.ndarray, list[str] | None]:
    """A headerless (MOGONET) or headed numeric CSV -> ``(array, column names or None)``."""
    frame = read_table(path, header=header)
    names = [str(c) for c in frame.columns] if header else None
    return to_numeric_matrix(frame, path, row_offset=2 if header else 1), names


def read_lines(path: str | Path) -> list[str]:
    """Non-empty stripped lines of a text file (feature-name files)."""
    path = Path(path)
    check_readable(path)
    lines = [line.strip() for line in _decode(path)[0].splitlines()]
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
