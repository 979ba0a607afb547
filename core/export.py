"""CSV and XLSX writing shared by every export, with spreadsheet-formula neutralising.

A cell that begins with ``= + - @`` (or a tab/CR) would run as a formula when opened in
Excel/WPS; :func:`safe_cell` prefixes it with an apostrophe. Numbers stay numbers.
"""

from __future__ import annotations

import csv
import io
import sys
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import click
from openpyxl import Workbook

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Neutralise text that a spreadsheet would run as a formula."""
    if value is None:
        return ""
    if isinstance(value, bool | int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        value = ";".join(str(v) for v in value)
    text = str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


def write_csv(stream: Any, header: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
    """Write a UTF-8 CSV (with BOM for Excel) to a text stream; returns the row count."""
    stream.write("\ufeff")
    writer = csv.writer(stream)
    writer.writerow([safe_cell(h) for h in header])
    n = 0
    for row in rows:
        writer.writerow([safe_cell(v) for v in row])
        n += 1
    return n


def csv_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> bytes:
    """The CSV of :func:`write_csv` as UTF-8 bytes (for a download body)."""
    buf = io.StringIO()
    write_csv(buf, header, rows)
    return buf.getvalue().encode("utf-8")


def xlsx_bytes(header: Sequence[str], rows: Iterable[Sequence[Any]], title: str = "export") -> bytes:
    """An XLSX workbook (openpyxl write-only mode, so large exports stream)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=title[:31] or "export")
    ws.append([safe_cell(h) for h in header])
    for row in rows:
        ws.append([float(v) if isinstance(v, Decimal) else safe_cell(v) for v in row])
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def write_export(output: Path | None, header: Sequence[str], rows: Iterable[Sequence[Any]],
                 title: str, noun: str) -> None:
    """Write an export where a CLI asked: ``.xlsx`` file, CSV file, or CSV on standard output.

    One place for the choice every export command makes; ``noun`` names the rows in the message
    ("Wrote 12 products to out.csv."), and messages go to standard error so standard output stays data.
    """
    if output is not None and output.suffix.lower() == ".xlsx":
        output.write_bytes(xlsx_bytes(header, rows, title))
        click.echo(f"Wrote {output}.", err=True)
    elif output is not None:
        with output.open("w", newline="", encoding="utf-8") as fh:
            n = write_csv(fh, header, rows)
        click.echo(f"Wrote {n} {noun} to {output}.", err=True)
    else:
        write_csv(sys.stdout, header, rows)
