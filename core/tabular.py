"""Reading CSV/XLSX import files row by row, with line numbers for error reports.

The one tabular reader every import uses (through :mod:`core.importer`)::

    table = read_table(path, aliases={"手机": "phone"})
    table.header                       # normalised column names, in file order
    for line, row in table.rows:       # row: {column: text}
        ...

Headers are stripped and lower-cased (the key after ``custom.`` keeps its case), then
mapped through ``aliases`` (matched on the header as written or lower-cased). Cells come
back as stripped strings ("" when empty); a cell our own export neutralised against
spreadsheet formulas (``'=SUM…``, ``'-5``) gets its leading quote back off. ``line`` is the
spreadsheet line (the header is line 1). Rows that are entirely empty are skipped. An
unreadable file (not UTF-8, malformed CSV, not a workbook) is one :class:`ValidationError`
naming the file and, where known, the line.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from openpyxl import load_workbook

from core.errors import ValidationError
from core.export import FORMULA_START

SUFFIXES = (".csv", ".xlsx", ".xlsm")


@dataclass(frozen=True)
class RowError:
    """One rejected cell or row: spreadsheet line, column (header name) and reason."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, column {self.column or '-'}: {self.reason}"


@dataclass
class Table:
    """An opened import file: its normalised header and a one-pass iterator of its rows."""

    header: list[str]
    rows: Iterator[tuple[int, dict[str, str]]]


def cell_text(value: Any) -> str:
    """A cell as stripped text, with our export's formula neutralising undone."""
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
    text = str(value).strip()
    if len(text) > 1 and text[0] == "'" and text[1].startswith(FORMULA_START):
        text = text[1:]
    return text


def _header(cells: list[Any], aliases: Mapping[str, str]) -> list[str]:
    out = []
    for c in cells:
        raw = cell_text(c).lstrip("\ufeff").strip()
        if raw.lower().startswith("custom."):
            out.append("custom." + raw[len("custom."):].strip())
            continue
        out.append(aliases.get(raw) or aliases.get(raw.lower()) or raw.lower())
    return out


def count_rows(path: str | Path) -> int | None:
    """Data rows in the file (for a progress bar); None when unknown."""
    path = Path(path)
    if path.suffix.lower() == ".csv":
        with path.open("rb") as fh:
            return max(sum(1 for _ in fh) - 1, 0)
    return None


def read_table(path: str | Path, *, aliases: Mapping[str, str] | None = None) -> Table:
    """Open a CSV or XLSX file: the header is read (and checked) now, the rows on iteration."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path, aliases or {})
    if suffix in (".xlsx", ".xlsm"):
        return _read_xlsx(path, aliases or {})
    raise ValidationError(f"Cannot import '{path.name}': use a .csv or .xlsx file.",
                          fields={"file": ["Unsupported file type."]})


def read_rows(path: str | Path, *, aliases: Mapping[str, str] | None = None) -> Iterator[tuple[int, dict[str, str]]]:
    """Yield ``(line, {header: text})`` for every non-empty data row of a CSV or XLSX file."""
    yield from read_table(path, aliases=aliases).rows


def _not_utf8(path: Path, line: int | None = None) -> ValidationError:
    near = f" near line {line}" if line else ""
    return ValidationError(f"'{path.name}' is not UTF-8 text{near}; save it as 'CSV UTF-8'.",
                           fields={"file": ["Not UTF-8 text."]})


def _read_csv(path: Path, aliases: Mapping[str, str]) -> Table:
    try:
        fh = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise ValidationError(f"Cannot open '{path.name}': {exc.strerror}.") from None
    reader = csv.reader(fh)
    try:
        header = _header(next(reader, []), aliases)
    except UnicodeDecodeError:
        fh.close()
        raise _not_utf8(path) from None
    except csv.Error as exc:
        fh.close()
        raise ValidationError(f"'{path.name}' line 1: {exc}.") from None
    if not any(header):
        fh.close()
        raise ValidationError(f"'{path.name}' is empty: the first line must be the header.")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        with fh:
            try:
                for cells in reader:
                    if not any(c.strip() for c in cells):
                        continue
                    yield reader.line_num, {h: cell_text(cells[i]) if i < len(cells) else ""
                                            for i, h in enumerate(header) if h}
            except UnicodeDecodeError:
                raise _not_utf8(path, reader.line_num + 1) from None
            except csv.Error as exc:
                raise ValidationError(f"'{path.name}' line {reader.line_num}: {exc}.") from None

    return Table(header, rows())


def _read_xlsx(path: Path, aliases: Mapping[str, str]) -> Table:
    try:
        wb = load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable workbook is one clear error
        raise ValidationError(f"Cannot read '{path.name}' as a workbook: {exc}.") from None
    ws = wb.worksheets[0]
    it = ws.iter_rows(values_only=True)
    header = _header(list(next(it, []) or []), aliases)
    if not any(header):
        wb.close()
        raise ValidationError(f"'{path.name}' is empty: the first row must be the header.")

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        try:
            for line, cells in enumerate(it, start=2):
                if not any(c not in (None, "") for c in cells):
                    continue
                yield line, {h: cell_text(cells[i]) if i < len(cells) else ""
                             for i, h in enumerate(header) if h}
        finally:
            wb.close()

    return Table(header, rows())


def require_columns(path: str | Path, header_keys: set[str] | list[str], required: set[str]) -> None:
    """Refuse a file whose header lacks any of ``required`` (one error naming them all)."""
    missing = sorted(required - set(header_keys))
    if missing:
        raise ValidationError(f"'{Path(path).name}' lacks the column(s) {', '.join(missing)}.",
                              fields={"file": [f"Missing column {m}." for m in missing]})
