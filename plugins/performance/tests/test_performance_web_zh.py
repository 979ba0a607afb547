"""The commission statement pages in zh_CN: states by their workflow labels (flash, list and
page), line kinds translated, the approval and history times in the company's local time."""

from __future__ import annotations

import re
from datetime import datetime

JAN = datetime(2026, 1, 10, 4)


def test_statement_page_in_chinese_with_local_times(app, org, category, product, sale, write_rules, web_login):
    from core.db import db
    from plugins.performance.models import Statement
    from plugins.performance.sources import to_local

    cat = category("Nutrition")
    write_rules("categories:\n  Nutrition: {percent: 10}\n")
    sale(org.rep1, [(product(cat, "100.00"), 3)], completed=JAN)
    r = org.api["finance"].post("/api/v1/performance/statements/generate", json={"period": "2026-01"})
    assert r.status_code in (200, 201), r.json
    sid = next(s["id"] for s in org.api["finance"].get("/api/v1/performance/statements").json["items"]
               if s["rep_id"] == org.rep1.id)
    db.session.commit()
    web = web_login(username="manager1")
    web.get("/?lang=zh_CN")
    r = web.post(f"/performance/statements/{sid}/transition", data={"transition": "approve"}, follow_redirects=True)
    page = r.get_data(as_text=True)
    assert "结算单状态现为：已审批。" in page, page
    assert "<dd>已审批</dd>" in page and "approved" not in re.sub(r"<[^>]+>", " ", page.split("<body", 1)[1])
    assert re.search(r"<td>销售</td>", page)  # the line kind "sale"
    db.session.expire_all()
    local = to_local(db.session.get(Statement, sid).approved_at).strftime("%Y-%m-%d %H:%M")
    assert f"<dd>{local}</dd>" in page  # not the stored UTC ISO text
    assert re.search(rf"<tr><td>{local}</td><td>草稿 → 已审批</td>", page), page
    listing = web.get("/performance/statements?period=2026-01").get_data(as_text=True)
    assert "<td>已审批</td>" in listing
