"""Errors for bad input data that say where the problem is and what was expected."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Input data that cannot be used; the message names file, row and column.

    ``problems`` holds every problem found, so a user sees all bad rows at once instead of
    fixing them one run at a time.
    """

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        self.problems = list(problems or [])
        if self.problems:
            shown = self.problems[:20]
            more = len(self.problems) - len(shown)
            message = message + "\n" + "\n".join(f"  - {p}" for p in shown)
            if more > 0:
                message += f"\n  ... and {more} more"
        super().__init__(message)


def where(path: str | Path, row: int | None = None, column: str | int | None = None) -> str:
    """``file``, ``file, row 3``, ``file, row 3, column 'x'`` (rows are 1-based as in an editor)."""
    text = str(path)
    if row is not None:
        text += f", row {row}"
    if column is not None:
        text += f", column {column!r}" if isinstance(column, str) else f", column {column}"
    return text
