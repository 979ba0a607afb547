"""Reading CSV/XLSX import files row by row, with line numbers for error reports.

Shared by every plugin's file import::

    for line, row in read_rows(path):   # row: {normalised header: text}
        ...

Headers are stripped and lower-cased; cells come back as stripped strings ("" when
empty). ``line`` is the spreadsheet line (the header is line 1). Rows that are
entirely empty are skipped.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from core.errors import ValidationError


@dataclass(frozen=True)
class RowError:
    """One rejected cell or row: spreadsheet line, column (header name) and reason."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column or '-'}: {self.reason}"


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value).strip()


def _header(cells: list[Any]) -> list[str]:
    return [_text(c).lstrip("\ufeff").strip().lower() for c in cells]


def count_rows(path: str | Path) -> int | None:
    """Data rows in the file (for a progress bar); None when unknown."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open("rb") as fh:
            return max(sum(1 for _ in fh) - 1, 0)
    return None


def read_rows(path: str | Path) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {header: text})`` for every non-empty data row of a CSV or XLSX file."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        yield from _read_csv(path)
    elif suffix in (".xlsx", ".xlsm"):
        yield from _read_xlsx(path)
    else:
        raise ValidationError(f"Cannot import '{path.name}': use a .csv or .xlsx file.",
                              fields={"file": ["Unsupported file type."]})


def _read_csv(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"Cannot open '{path}': {exc.strerror}.") from None
    with fh:
        reader = csv.reader(fh)
        try:
            header = _header(next(reader, []))
            if not any(header):
                raise ValidationError(f"'{path.name}' is empty: the first line must be the header.")
            for cells in reader:
                if not any(c.strip() for c in cells):
                    continue
                yield reader.line_num, {h: _text(cells[i]) if i < len(cells) else ""
                                        for i, h in enumerate(header) if h}
        except UnicodeDecodeError:
            raise ValidationError(f"'{path.name}' is not UTF-8 text; save it as CSV UTF-8.") from None


def _read_xlsx(path: Path) -> Iterator[tuple[int, dict[str, str]]]:
    from openpyxl import load_workbook

    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is one clear error
        raise ValidationError(f"Cannot read '{path.name}' as a workbook: {exc}.") from None
    try:
        ws = wb.worksheets[0]
        rows = ws.iter_rows(values_only=True)
        header = _header(list(next(rows, [])))
        if not any(header):
            raise ValidationError(f"'{path.name}' is empty: the first row must be the header.")
        for line, cells in enumerate(rows, start=2):
            if not any(c not in (None, "") for c in cells):
                continue
            yield line, {h: _text(cells[i]) if i < len(cells) else ""
                         for i, h in enumerate(header) if h}
    finally:
        wb.close()


def require_columns(path: str | Path, header_keys: set[str], required: set[str]) -> None:
    missing = sorted(required - header_keys)
    if missing:
        raise ValidationError(f"'{Path(path).name}' lacks the column(s) {', '.join(missing)}.",
                              fields={"file": [f"Missing column {m}." for m in missing]})
