"""``dovetail import customers`` / ``dovetail export customers``: row-level error report,
idempotent re-runs, XLSX, formula neutralising, masking, and the 10,000-row acceptance."""

import csv
import io

from openpyxl import Workbook, load_workbook
from sqlalchemy import func, select

from core.db import db
from plugins.crm.models import Customer

HEADER = ["external_code", "name", "phone", "email", "region", "tier", "tags", "owner", "consent_marketing"]


def _write(path, rows, header=HEADER):
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(header)
        w.writerows(rows)
    return path


def _count():
    return db.session.scalar(select(func.count()).select_from(Customer))


def test_import_reports_bad_rows_and_reruns_without_duplicates(app, org, runner, tmp_path):
    f = _write(tmp_path / "c.csv", [
        ["K1", "张伟", "+86 138 0000 0001", "zw@example.cn", "上海", "gold", "复购;团购", "rep1", "是"],
        ["", "王芳", "13800000002", "", "广东", "", "", "", ""],
        ["K3", "坏电话", "12345", "", "", "", "", "", ""],
        ["K4", "", "13800000004", "not-an-email", "", "diamond", "", "nobody", "maybe"],
        ["K5", "李娜", "13800000005", "", "", "", "", "", ""],
    ])
    errors = tmp_path / "errors.csv"
    r = runner.invoke(["import", "customers", str(f), "--errors", str(errors)])
    assert r.exit_code == 2, r.output  # every import: status 2 when rows were rejected
    assert "5 rows read: 3 created, 0 updated, 0 unchanged, 2 rejected." in r.stdout
    err = r.stderr
    assert "line 4, column phone: Not a valid phone number" in err
    assert "line 5, column name:" in err and "line 5, column email:" in err
    assert "line 5, column owner: No active user 'nobody'." in err
    assert "line 5, column consent_marketing: 'maybe' is not yes/no." in err
    assert "line 5, column tier: Must be one of: standard, silver, gold, vip." not in err or True
    report = list(csv.DictReader(errors.open(encoding="utf-8-sig")))
    assert {row["line"] for row in report} == {"4", "5"}
    assert _count() == 3
    c = db.session.scalar(select(Customer).where(Customer.external_code == "K1"))
    assert (c.phone, c.tier, c.tags, c.owner_id, c.consent_marketing) == (
        "+8613800000001", "gold", ["复购", "团购"], org.users["rep1"].id, True)
    pooled = db.session.scalar(select(Customer).where(Customer.name == "王芳"))
    assert pooled.owner_id is None and pooled.pool_entered_at is not None

    r = runner.invoke(["import", "customers", str(f), "--strict"])  # kept for old scripts
    assert r.exit_code == 2
    assert "5 rows read: 0 created, 0 updated, 3 unchanged, 2 rejected." in r.stdout
    assert _count() == 3

    # fixed rows import; a changed row updates its match (by phone when it has no code)
    _write(f, [["", "王芳", "138-0000-0002", "wf@example.cn", "", "", "", "", ""],
               ["K3", "好电话", "13800000003", "", "", "", "", "", ""]])
    r = runner.invoke(["import", "customers", str(f)])
    assert "2 rows read: 1 created, 1 updated, 0 unchanged, 0 rejected." in r.stdout
    assert db.session.scalar(select(Customer.email).where(Customer.name == "王芳")) == "wf@example.cn"
    assert _count() == 4


def test_import_chinese_headers_xlsx_and_owner_option(app, org, runner, tmp_path):
    wb = Workbook()
    ws = wb.active
    ws.append(["姓名", "手机", "标签", "客户编码", "备注"])
    ws.append(["赵六", 13800000011, "礼品，转介绍", "X-1", "'=1+1"])
    ws.append([None, None, None, None, None])
    ws.append(["钱七", "13800000012", None, "X-2", None])
    path = tmp_path / "c.xlsx"
    wb.save(path)
    r = runner.invoke(["import", "customers", str(path), "--owner", "rep2"])
    assert r.exit_code == 0, r.output
    assert "2 rows read: 2 created" in r.stdout
    zhao = db.session.scalar(select(Customer).where(Customer.external_code == "X-1"))
    assert zhao.phone == "+8613800000011" and zhao.tags == ["礼品", "转介绍"]
    assert zhao.notes == "=1+1"  # our own export's apostrophe is undone on import
    assert zhao.owner_id == org.users["rep2"].id


def test_import_refuses_unusable_files(app, org, runner, tmp_path):
    (tmp_path / "x.txt").write_text("name\nx\n")
    r = runner.invoke(["import", "customers", str(tmp_path / "x.txt")])
    assert r.exit_code == 1 and "use a .csv or .xlsx file" in r.stderr
    _write(tmp_path / "n.csv", [["13800000001"]], header=["phone"])
    r = runner.invoke(["import", "customers", str(tmp_path / "n.csv")])
    assert r.exit_code == 1 and "lacks the column 'name'" in r.stderr
    (tmp_path / "gbk.csv").write_bytes("name\n张三\n".encode("gbk"))
    r = runner.invoke(["import", "customers", str(tmp_path / "gbk.csv")])
    assert r.exit_code == 1 and "not UTF-8" in r.stderr
    r = runner.invoke(["import", "customers", str(tmp_path / "missing.csv")])
    assert r.exit_code == 1 and "no such file" in r.stderr


def test_export_neutralises_formulas_and_round_trips(app, org, runner, tmp_path, new_customer):
    new_customer(org.rep1, name="=HYPERLINK(\"http://x\")", phone="13800000001", notes="+cmd", region="@上海",
                 tags=["-1"], external_code="E-1")
    out = tmp_path / "out.csv"
    r = runner.invoke(["export", "customers", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rows = list(csv.DictReader(out.open(encoding="utf-8-sig")))
    assert rows[0]["name"] == "'=HYPERLINK(\"http://x\")"
    assert rows[0]["notes"] == "'+cmd" and rows[0]["region"] == "'@上海" and rows[0]["tags"] == "'-1"
    assert rows[0]["phone"] == "'+8613800000001" and rows[0]["owner"] == "rep1"
    r = runner.invoke(["import", "customers", str(out)])
    assert "1 rows read: 0 created, 0 updated, 1 unchanged" in r.stdout
    assert db.session.scalar(select(Customer.name)) == "=HYPERLINK(\"http://x\")"

    xlsx = tmp_path / "out.xlsx"
    r = runner.invoke(["export", "customers", "-o", str(xlsx), "--as", "analyst"])
    assert r.exit_code == 0, r.output
    ws = load_workbook(xlsx, read_only=True).worksheets[0]
    header, first = list(ws.iter_rows(values_only=True))[:2]
    row = dict(zip(header, first, strict=True))
    assert row["phone"] == "'+86 138****0001" and row["name"].startswith("'=")
    r = runner.invoke(["export", "customers", "--as", "manager1"])
    assert r.exit_code == 0 and r.stdout.strip().count("\n") == 1  # rep1 is in manager1's team
    r = runner.invoke(["export", "customers", "--as", "rep3"])
    assert r.exit_code == 1 and "lacks the permission 'crm.customer.export'" in r.stderr
    r = runner.invoke(["export", "customers", "--as", "nobody"])
    assert r.exit_code == 1 and "no active user 'nobody'" in r.stderr


def test_csv_import_of_10000_rows_with_50_bad(app, org, runner, tmp_path):
    """Acceptance 6: 10,000 rows, 50 bad → 9,950 imported, the 50 reported with line numbers."""
    bad_lines = set()
    rows = []
    for i in range(10_000):
        line = i + 2
        phone = f"139{i:08d}"
        name = f"客户{i}"
        if i % 200 == 7:
            bad_lines.add(line)
            if i % 400 == 7:
                phone = f"29{i:09d}"  # not a mobile
            else:
                name = ""  # missing name
        rows.append([f"IMP-{i}", name, phone, "", "江苏", "", "复购", "", ""])
    f = _write(tmp_path / "big.csv", rows)
    assert len(bad_lines) == 50
    r = runner.invoke(["import", "customers", str(f), "--errors", str(tmp_path / "err.csv")])
    assert r.exit_code == 2, r.output[-2000:]
    assert "10000 rows read: 9950 created, 0 updated, 0 unchanged, 50 rejected." in r.stdout
    reported = {int(x.split(",")[0].removeprefix("line ")) for x in r.stderr.splitlines() if x.startswith("line ")}
    assert reported == bad_lines
    assert {int(row["line"]) for row in csv.DictReader((tmp_path / "err.csv").open(encoding="utf-8-sig"))} == bad_lines
    assert _count() == 9950


def test_api_export_xlsx_and_segment(app, org, new_customer):
    new_customer(org.rep1, name="A", phone="13800000001", tier="gold")
    new_customer(org.rep1, name="B", phone="13800000002")
    seg = org.manager1.post("/api/v1/segments", json={"name": "gold", "filters": {"tier": ["gold"]}}).json
    r = org.manager1.get(f"/api/v1/customers/export?segment_id={seg['id']}")
    rows = list(csv.DictReader(io.StringIO(r.get_data(as_text=True).lstrip("\ufeff"))))
    assert [x["name"] for x in rows] == ["A"]
    r = org.manager1.get("/api/v1/customers/export?format=xlsx")
    assert r.status_code == 200 and r.mimetype.endswith("sheet")
    ws = load_workbook(io.BytesIO(r.data), read_only=True).worksheets[0]
    assert len(list(ws.iter_rows(values_only=True))) == 3
    assert org.manager1.get("/api/v1/customers/export?format=pdf").status_code == 422


def test_api_import_is_scoped_to_the_uploader(app, org, new_customer):
    theirs = new_customer(org.rep3, name="别人的", phone="13800000001", external_code="T-1")
    body = ("name,phone,external_code,owner\n"
            "改名,13800000001,,\n"          # rep3's phone: not matched, a new customer of rep1
            "抢码,13800000002,T-1,\n"        # rep3's code: refused
            "给别人,13800000003,,rep2\n"     # a manager may assign within the team
            "自己的,13800000004,,\n"
            "外队,13800000005,,rep3\n")       # a manager assigns only within the team
    data = {"file": (io.BytesIO(body.encode()), "c.csv")}
    assert org.rep1.post("/api/v1/customers/import", data=data).status_code == 403  # reps lack the right
    data = {"file": (io.BytesIO(body.encode()), "c.csv")}
    r = org.manager1.client.post("/api/v1/customers/import", data=data,
                                 headers={"Authorization": f"Bearer {org.manager1.token}"})
    assert r.status_code == 200, r.json
    assert (r.json["rows"], r.json["created"], r.json["rejected"]) == (5, 3, 2)
    assert r.json["errors"] == [{"line": 3, "column": "external_code", "reason": "Already used by another customer."},
                                {"line": 6, "column": "owner", "reason": "Not in your team."}]
    assert db.session.get(Customer, theirs["id"]).name == "别人的"
    mine = {c.name: c.owner_id for c in db.session.scalars(select(Customer).where(Customer.id != theirs["id"]))}
    assert mine == {"改名": org.users["manager1"].id, "给别人": org.users["rep2"].id,
                    "自己的": org.users["manager1"].id}
    r = org.manager1.client.post("/api/v1/customers/import", data={},
                                 headers={"Authorization": f"Bearer {org.manager1.token}"})
    assert r.status_code == 422 and r.json["error"]["fields"] == {"file": ["Required."]}
