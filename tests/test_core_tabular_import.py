"""core.tabular (the one reader) and core.importer (the one row-import driver), on core's own
``core_team`` table so no business plugin is needed."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from marshmallow import Schema, fields, validate
from openpyxl import Workbook
from sqlalchemy import func, select

from core.db import db
from core.errors import ValidationError
from core.importer import RowImport, run_import
from core.models import Team
from core.tabular import read_table


def _csv(tmp_path: Path, text: str, name: str = "t.csv") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reader_aliases_custom_keys_formula_prefix_and_empty_rows(tmp_path):
    path = _csv(tmp_path, "\ufeff 名称 ,Region,custom.WeChat\n'=SUM(A1),'-5, x \n,,\n乙,,\n")
    table = read_table(path, aliases={"名称": "name"})
    assert table.header == ["name", "region", "custom.WeChat"]
    assert list(table.rows) == [(2, {"name": "=SUM(A1)", "region": "-5", "custom.WeChat": "x"}),
                                (4, {"name": "乙", "region": "", "custom.WeChat": ""})]
    wb = Workbook()
    wb.active.append(["NAME", "region"])
    wb.active.append([None, None])
    wb.active.append(["甲", 12.0])
    wb.save(tmp_path / "t.xlsx")
    assert list(read_table(tmp_path / "t.xlsx").rows) == [(3, {"name": "甲", "region": "12"})]


@pytest.mark.parametrize(("name", "content", "message"), [
    ("t.txt", b"name\n", "use a .csv or .xlsx file"),
    ("t.csv", b"", "is empty"),
    ("t.csv", "name\n甲\n".encode("gbk"), "is not UTF-8 text"),
    ("t.csv", b'name\n"' + b"x" * 200_000 + b'"\n', "t.csv' line 2: field larger than field limit"),
    ("t.xlsx", b"not a zip", "Cannot read 't.xlsx' as a workbook"),
])
def test_reader_refuses_unreadable_files_with_one_clear_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValidationError) as err:
        list(read_table(path).rows)
    assert message in err.value.message


class TeamIn(Schema):
    name = fields.String(required=True, validate=validate.Length(max=10))
    region = fields.String(load_default=None, validate=validate.OneOf(["华东", "华南"]))


class TeamImport(RowImport):
    """Teams keyed on name: the smallest real import."""

    noun = "teams"
    required = frozenset({"name"})
    columns = frozenset({"name", "region"})
    aliases = {"团队": "name"}
    outcomes = ("created", "updated")
    schema = TeamIn()

    def check(self, line: int, data: dict[str, Any], failed: set[str]) -> list[tuple[str, str]]:
        if data.get("name") == "taken":
            return [("name", "Reserved.")]
        return []

    def save(self, line: int, data: dict[str, Any]) -> str:
        if data["name"] == "boom":
            raise ValidationError("Refused.", fields={"name": ["Refused by the service."]})
        team = db.session.scalar(select(Team).where(Team.name == data["name"]))
        if team is None:
            db.session.add(Team(name=data["name"], region=data["region"]))
            db.session.flush()
            return "created"
        team.region = data["region"]
        return "updated"


FILE = ("团队,region,extra\n"
        "North,华东,1\n"
        "way-too-long-name,火星,\n"   # two bad cells
        "taken,,\n"                   # refused by check()
        "boom,,\n"                    # refused by save(): its savepoint rolls back, others stay
        "South,华南,\n"
        "North,华南,\n")


def test_driver_reports_every_problem_and_saves_the_good_rows(app, tmp_path):
    report = run_import(TeamImport(), _csv(tmp_path, FILE), batch=2)
    assert report.counts == {"created": 2, "updated": 1, "rejected": 3}
    assert report.rows == 6 and report.ignored_columns == ["extra"]
    assert [str(e) for e in report.errors] == [
        "line 3, column name: Longer than maximum length 10.",
        "line 3, column region: Must be one of: 华东, 华南.",
        "line 4, column name: Reserved.",
        "line 5, column name: Refused by the service."]
    assert report.summary() == "6 rows read: 2 created, 1 updated, 3 rejected."
    assert dict(db.session.execute(select(Team.name, Team.region)).all()) == {"North": "华南", "South": "华南"}
    out = tmp_path / "errors.csv"
    report.write_errors(out)
    assert out.read_text(encoding="utf-8-sig").splitlines()[:2] == [
        "line,column,reason", "3,name,Longer than maximum length 10."]
    counts, errors = report  # callers that only show the result unpack it
    assert counts is report.counts and errors is report.errors


def test_dry_run_checks_everything_and_saves_nothing(app, tmp_path):
    report = run_import(TeamImport(), _csv(tmp_path, FILE), dry_run=True, batch=2)
    assert report.counts == {"created": 2, "updated": 1, "rejected": 3} and report.dry_run
    assert db.session.scalar(select(func.count(Team.id))) == 0


def test_missing_required_column_refuses_the_file_before_saving(app, tmp_path):
    with pytest.raises(ValidationError) as err:
        run_import(TeamImport(), _csv(tmp_path, "region\n华东\n"))
    assert "lacks the column(s) name" in err.value.message
    assert db.session.scalar(select(func.count(Team.id))) == 0
