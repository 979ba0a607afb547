"""The one row-import driver every CSV/XLSX import goes through.

A plugin describes one kind of import as a :class:`RowImport` subclass (its columns,
aliases, row schema, database checks and how a good row is saved); :func:`run_import`
does the rest the same way for all of them::

    report = run_import(ProductImport(user), path, dry_run=False, batch=500)
    report.counts        # {"created": 3, "updated": 1, "unchanged": 0, "rejected": 2}
    report.errors        # [RowError(line, column, reason), ...], sorted by line

It reads the file through :mod:`core.tabular` (header aliases, formula-prefix undo, file
errors as one :class:`~core.errors.ValidationError`), turns each row into data with the
import's marshmallow schema, collects every problem of a row as ``line, column, reason``,
saves good rows in batches (each row in a savepoint, so a row the services refuse is
reported and the others are kept), commits after every batch, and on ``dry_run`` checks
and saves everything inside the transaction but rolls it all back.

:func:`import_command` builds the ``dovetail import <noun> FILE`` click command with the
options every import shares: ``--dry-run``, ``--errors FILE`` (the report as CSV),
``--batch N``; exit status 2 when any row was rejected.
"""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import click
from marshmallow import Schema
from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import JSON, Table, Text, bindparam, cast, func, insert, select
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.sql.elements import ColumnElement

from core.cli import with_app
from core.db import db
from core.errors import DovetailError
from core.export import safe_cell
from core.tabular import RowError, count_rows, read_table, require_columns

__all__ = ["ImportReport", "Problems", "RowError", "RowImport", "bulk_insert", "flatten_messages",
           "import_command", "run_import"]

#: ``(column, reason)`` pairs found in one row.
Problems = list[tuple[str, str]]


def flatten_messages(messages: Any, prefix: str = "") -> Problems:
    """Marshmallow/DovetailError field messages (nested dicts and lists) as ``(column, reason)``."""
    out: Problems = []
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            if isinstance(key, int):  # the index of a list item: report it on the list's column
                out.extend(flatten_messages(value, prefix))
                continue
            out.extend(flatten_messages(value, f"{prefix}.{key}" if prefix else str(key)))
    elif isinstance(messages, list | tuple):
        for m in messages:
            out.extend(flatten_messages(m, prefix))
    else:
        out.append((prefix, str(messages)))
    return out


@dataclass
class ImportReport:
    """What an import did: counts per outcome (and ``rejected``), row errors, rows read."""

    counts: dict[str, int]
    errors: list[RowError] = field(default_factory=list)
    rows: int = 0
    ignored_columns: list[str] = field(default_factory=list)
    dry_run: bool = False
    #: the counts as a sentence, e.g. ``"{imported} orders ({lines} lines), {rejected} rejected"``.
    summary_format: str | None = None

    def __iter__(self) -> Any:
        """Unpack as ``counts, errors`` (what callers showing a result need)."""
        return iter((self.counts, self.errors))

    @property
    def rejected_lines(self) -> list[int]:
        """Spreadsheet lines with at least one error."""
        return sorted({e.line for e in self.errors})

    def summary(self) -> str:
        """``"N rows read: 3 created, …, 2 rejected."``, the line every import prints."""
        counts = (self.summary_format.format(**self.counts) if self.summary_format
                  else ", ".join(f"{n} {k}" for k, n in self.counts.items()))
        return f"{self.rows} rows read: {counts}."

    def reject(self, line: int, problems: Problems) -> None:
        """Record a rejected row with its problems."""
        self.counts["rejected"] = self.counts.get("rejected", 0) + 1
        self.errors.extend(RowError(line, col, reason) for col, reason in problems)

    def as_dict(self, limit: int = 1000) -> dict[str, Any]:
        """Plain data for an API answer (at most ``limit`` errors)."""
        return {"rows": self.rows, **self.counts, "dry_run": self.dry_run,
                "errors": [{"line": e.line, "column": e.column, "reason": e.reason}
                           for e in self.errors[:limit]]}

    def write_errors(self, path: str | Path) -> None:
        """The error report as CSV (UTF-8 with BOM for Excel): line, column, reason."""
        write_errors(path, self.errors)


def write_errors(path: str | Path, errors: Iterable[RowError]) -> None:
    """Write row errors as a CSV report: line, column, reason (formula-like cells neutralised)."""
    with Path(path).open("w", newline="", encoding="utf-8-sig") as fh:
        w = csv.writer(fh)
        w.writerow(["line", "column", "reason"])
        for e in errors:
            w.writerow([e.line, safe_cell(e.column), safe_cell(e.reason)])


class RowImport:
    """One kind of import; subclass it and override what differs.

    Per row the driver calls :meth:`parse` (cells → schema input, plus problems a schema
    cannot see), loads the result through :attr:`schema`, then :meth:`check` (database
    lookups, duplicates within the file). Good rows are handed to :meth:`save_batch`
    (by default :meth:`save` per row in a savepoint); :meth:`finish` runs once at the end.
    """

    #: plural noun for messages ("products").
    noun: ClassVar[str] = "rows"
    #: columns the header must have.
    required: ClassVar[frozenset[str]] = frozenset()
    #: every column the import reads (``custom.<key>`` always allowed); others are reported ignored.
    columns: ClassVar[frozenset[str]] = frozenset()
    #: header spellings mapped to column names (e.g. Chinese headers).
    aliases: ClassVar[Mapping[str, str]] = {}
    #: outcome counters besides ``rejected``.
    outcomes: ClassVar[tuple[str, ...]] = ("created", "updated", "unchanged")
    #: the summary sentence (see :attr:`ImportReport.summary_format`); None: every count by name.
    summary_format: ClassVar[str | None] = None
    #: schema field name → column name, for error messages.
    column_of: ClassVar[Mapping[str, str]] = {}
    #: the schema each row's data is loaded with (None: :meth:`parse`'s output is the data).
    schema: Schema | None = None

    def check_header(self, path: Path, header: list[str]) -> None:
        """Refuse a file lacking required columns (override for "one of" rules)."""
        require_columns(path, header, set(self.required))

    def parse(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        """Cells → the schema's input; default: the non-empty cells of :attr:`columns` as they are."""
        return {k: v for k, v in row.items() if v != "" and (not self.columns or k in self.columns)}, []

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> Problems:
        """Checks that need the database or the rest of the file (``failed``: columns in error)."""
        return []

    #: save one good row and return its outcome (a key of :attr:`outcomes`); raise to reject it.
    #: Every subclass defines it, or overrides :meth:`save_batch` to save whole batches.
    save: Callable[[int, dict[str, Any]], str]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not hasattr(cls, "save") and cls.save_batch is RowImport.save_batch:
            raise TypeError(f"{cls.__name__} must define save() or save_batch()")

    def save_batch(self, items: list[tuple[int, dict[str, Any]]], report: ImportReport) -> None:
        """Save a batch of good rows, each in a savepoint; a refused row becomes its errors."""
        for line, data in items:
            try:
                with db.session.begin_nested():
                    outcome = self.save(line, data)
            except DovetailError as exc:
                report.reject(line, self.problems_of(exc))
                continue
            report.counts[outcome] = report.counts.get(outcome, 0) + 1

    def finish(self, report: ImportReport, commit: Callable[[], None]) -> None:
        """Called once after the last batch (before the final commit)."""

    def problems_of(self, exc: DovetailError) -> Problems:
        """A services error as row problems, columns named as in the file."""
        flat = flatten_messages(exc.fields) if exc.fields else [("", exc.message)]
        return [(self.column_of.get(col, col), msg) for col, msg in flat]

    def validate(self, line: int, row: dict[str, str]) -> tuple[dict[str, Any], Problems]:
        """Parse, load through the schema and check one row; returns its data and problems."""
        raw, problems = self.parse(line, row)
        data = raw
        if self.schema is not None:
            try:
                data = self.schema.load(raw)
            except MarshmallowError as err:
                problems = problems + [(self.column_of.get(c, c), m) for c, m in flatten_messages(err.messages)]
                data = err.valid_data if isinstance(err.valid_data, dict) else {}
        failed = {col.split(".")[0] for col, _m in problems}
        problems = problems + self.check(line, data, failed)
        return data, problems


def bulk_insert(table: Table, rows: list[dict[str, Any]]) -> None:
    """Insert many rows (all with the same keys) in the current transaction, fast on each backend.

    PostgreSQL: one ``INSERT … SELECT unnest(:col1), unnest(:col2), …`` with one array
    parameter per column (a multi-row VALUES list or an executemany would cost the driver
    or the server per row); elsewhere an executemany.
    """
    if not rows:
        return
    session = db.session
    if session.get_bind().dialect.name != "postgresql":
        session.execute(insert(table), rows)
        return
    cols = list(rows[0])
    arrays: list[ColumnElement[Any]] = []
    for c in cols:
        col_type = table.c[c].type
        if isinstance(col_type, JSON):  # a JSON list is a value, not an array dimension: send text
            values = [None if r[c] is None else json.dumps(r[c], ensure_ascii=False) for r in rows]
            arrays.append(cast(func.unnest(bindparam(f"bulk_{c}", values, type_=ARRAY(Text))), JSONB))
        else:
            arrays.append(func.unnest(bindparam(f"bulk_{c}", [r[c] for r in rows], type_=ARRAY(col_type))))
    session.execute(insert(table).from_select(cols, select(*arrays)))


def run_import(job: RowImport, path: str | Path, *, dry_run: bool = False, batch: int = 500,
               progress: Callable[[int], Any] | None = None) -> ImportReport:
    """Run ``job`` over the CSV/XLSX file at ``path``; see the module docstring.

    A file that cannot be read (type, encoding, missing columns) raises a
    :class:`~core.errors.ValidationError` before anything is saved.
    """
    path = Path(path)
    table = read_table(path, aliases=job.aliases)
    job.check_header(path, table.header)
    report = ImportReport(counts={**{k: 0 for k in job.outcomes}, "rejected": 0}, dry_run=dry_run,
                          summary_format=job.summary_format)
    if job.columns:
        report.ignored_columns = [h for h in table.header
                                  if h and h not in job.columns and not h.startswith("custom.")]

    def commit() -> None:
        if dry_run:
            db.session.flush()
        else:
            db.session.commit()

    pending: list[tuple[int, dict[str, Any]]] = []
    for line, row in table.rows:
        report.rows += 1
        if progress is not None:
            progress(1)
        data, problems = job.validate(line, row)
        if problems:
            report.reject(line, problems)
            continue
        pending.append((line, data))
        if len(pending) >= batch:
            job.save_batch(pending, report)
            pending = []
            commit()
    if pending:
        job.save_batch(pending, report)
    job.finish(report, commit)
    if dry_run:
        db.session.rollback()
    else:
        db.session.commit()
    report.errors.sort(key=lambda e: e.line)
    return report


def import_command(noun: str, run: Callable[..., ImportReport], *, help: str,
                   options: Iterable[Callable[[Any], Any]] = ()) -> click.Command:
    """``dovetail import <noun> FILE`` with the shared options and output.

    ``run(path, dry_run=, batch=, progress=, **extra)`` does the import (``extra``: the
    values of the import's own ``options``, click decorators). Row errors go to standard
    error, ``--errors FILE`` writes them as CSV, one summary line goes to standard output,
    and the exit status is 2 when any row was rejected.
    """
    def command(file: Path, dry_run: bool, errors_file: Path | None, batch: int, strict: bool,
                **extra: Any) -> None:
        if not file.exists():
            raise click.ClickException(f"no such file: {file}")
        total = count_rows(file)
        with click.progressbar(length=total or 0, label=f"Importing {noun}", file=sys.stderr,
                               show_pos=True) as bar:
            report = run(file, dry_run=dry_run, batch=batch, progress=bar.update if total else None, **extra)
        for col in report.ignored_columns:
            click.echo(f"warning: column '{col}' is not read by this import; ignored", err=True)
        for e in report.errors:
            click.echo(str(e), err=True)
        if errors_file is not None:
            report.write_errors(errors_file)
        click.echo(f"{'Checked' if dry_run else 'Imported'} {file.name}, {report.summary()}"
                   + (" Nothing was saved (dry run)." if dry_run else ""))
        if report.errors:
            if errors_file is not None:
                click.echo(f"Rejected rows are listed in {errors_file}.")
            sys.exit(2)

    command.__doc__ = help
    for option in reversed(list(options)):
        command = option(command)
    command = click.option("--batch", "--chunk", "batch", default=500, show_default=True,
                           type=click.IntRange(1, 10000), help="Rows per committed batch.")(command)
    command = click.option("--errors", "errors_file", type=click.Path(dir_okay=False, path_type=Path),
                           help="Also write the rejected rows (line, column, reason) to this CSV file.")(command)
    command = click.option("--dry-run", is_flag=True, help="Check every row and report, but save nothing.")(command)
    command = click.option("--strict", is_flag=True, hidden=True,
                           help="Kept for old scripts: rejected rows always exit with status 2.")(command)
    command = click.argument("file", type=click.Path(dir_okay=False, path_type=Path))(command)
    return click.command(noun, help=help)(with_app(command))
