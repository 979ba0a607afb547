"""Commission statements: worked examples to the fen (issue 10, acceptance 1).

Rounding rule under test: every line's amount is rounded half-up to the fen; the cap is
``commission_cap`` × the month's net base, rounded half-up, applied to the month's total.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest

D = Decimal
JAN = datetime(2026, 1, 15, 4)
FEB = datetime(2026, 2, 12, 4)
MAR = datetime(2026, 3, 9, 4)


@pytest.fixture
def cats(category, write_rules):
    cats = {"hi": category("Skincare"), "lo": category("Nutrition"), "fix": category("Cookware"),
            "none": category("Misc")}
    write_rules("categories:\n  Skincare: {percent: 40}\n  Nutrition: {percent: 10}\n"
                "  Cookware: {per_unit: 15.00}\n")
    return cats


def _amounts(st):
    return [(ln.kind, ln.quantity, ln.base_amount, ln.amount) for ln in st.lines]


def test_cap_applied_ten_thousand_at_forty_percent_pays_three_thousand(org, cats, product, sale, generate,
                                                                       statement_of):
    p = product(cats["hi"], "2500.00")
    order = sale(org.rep1, [(p, 4)], completed=JAN)  # 10,000.00 of the rep's own sales
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert st.sales_base == D("10000.00") and st.net_base == D("10000.00")
    assert st.gross_amount == D("4000.00")  # 40 % rule
    assert st.cap_amount == D("3000.00") and st.total == D("3000.00") and st.capped is True
    assert st.cap_rate == D("0.3000")
    (line,) = st.lines
    assert (line.order_id, line.order_line_id, line.category_name) == (order.id, order.lines[0].id, "Skincare")
    assert line.rule == "Skincare: 40%" and line.rate_percent == D("40") and line.amount == D("4000.00")
    assert any("above the commission cap of 30%" in w for w in st.warnings)


def test_returns_are_netted_before_the_statement(org, cats, product, sale, give_back, generate, statement_of):
    p = product(cats["lo"], "200.00")
    order = sale(org.rep1, [(p, 5)], completed=JAN)  # 1,000.00
    give_back(order, {0: 2})  # two units came back before the statement: 600.00 left
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert _amounts(st) == [("sale", 3, D("600.00"), D("60.00"))]
    assert (st.net_base, st.gross_amount, st.total, st.capped) == (D("600.00"), D("60.00"), D("60.00"), False)


def test_whole_order_returned_earns_nothing(org, cats, product, sale, give_back, generate, statement_of):
    p = product(cats["lo"], "200.00")
    kept = sale(org.rep1, [(p, 1)], completed=JAN)
    gone = sale(org.rep1, [(p, 3)], completed=JAN)
    give_back(gone, {0: 3}, whole=True)
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert [ln.order_id for ln in st.lines] == [kept.id]
    assert st.total == D("20.00")


def test_another_reps_sales_are_never_counted(org, cats, product, sale, generate, statement_of):
    p = product(cats["lo"], "1000.00")
    mine = sale(org.rep1, [(p, 1)], completed=JAN)
    theirs = sale(org.rep2, [(p, 50)], completed=JAN)  # same team, same month, 50,000.00
    recruit = sale(org.rep3, [(p, 20)], completed=JAN)  # another team
    generate("2026-01")
    st1 = statement_of(org.rep1, "2026-01")
    assert {ln.order_id for ln in st1.lines} == {mine.id}
    assert (st1.sales_base, st1.total, st1.cap_amount) == (D("1000.00"), D("100.00"), D("300.00"))
    st2 = statement_of(org.rep2, "2026-01")
    assert {ln.order_id for ln in st2.lines} == {theirs.id} and st2.total == D("5000.00")
    assert {ln.order_id for ln in statement_of(org.rep3, "2026-01").lines} == {recruit.id}
    # A manager earns nothing from the team's sales: no statement at all without own sales.
    assert statement_of(org.manager1, "2026-01") is None
    # Regenerating one rep never pulls in anyone else's lines.
    generate("2026-01", rep_ids=[org.rep1.id])
    assert {ln.order_id for ln in statement_of(org.rep1, "2026-01").lines} == {mine.id}


def test_only_completed_orders_in_the_month_count(org, cats, product, sale, generate, statement_of):
    p = product(cats["lo"], "100.00")
    done = sale(org.rep1, [(p, 1)], completed=JAN)
    sale(org.rep1, [(p, 1)], status="shipped")  # paid and shipped, not completed
    sale(org.rep1, [(p, 1)], status="confirmed")
    sale(org.rep1, [(p, 1)], completed=FEB)  # next month
    sale(org.rep1, [(p, 1)], completed=datetime(2025, 12, 31, 15, 30))  # 23:30 local: December
    in_jan_local = sale(org.rep1, [(p, 1)], completed=datetime(2025, 12, 31, 16, 30))  # 00:30 on 1 Jan local
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert {ln.order_id for ln in st.lines} == {done.id, in_jan_local.id}
    assert st.total == D("20.00")


def test_late_return_adjusts_next_months_statement(org, cats, product, sale, give_back, generate, statement_of,
                                                   approve):
    p = product(cats["lo"], "500.00")
    jan = sale(org.rep1, [(p, 2)], completed=JAN)  # 1,000.00 → 100.00
    generate("2026-01")
    st_jan = statement_of(org.rep1, "2026-01")
    approve(st_jan, org.users["finance"], pay=True)
    give_back(jan, {0: 1})  # in February a unit of the January sale comes back
    q = product(cats["lo"], "1000.00")
    feb = sale(org.rep1, [(q, 2)], completed=FEB)  # 2,000.00 → 200.00
    result = generate("2026-01")
    assert [s.id for s, _why in result.skipped] == [st_jan.id] and result.generated == []
    generate("2026-02")
    st_jan, st_feb = statement_of(org.rep1, "2026-01"), statement_of(org.rep1, "2026-02")
    assert st_jan.status == "paid" and st_jan.total == D("100.00") and _amounts(st_jan) == [
        ("sale", 2, D("1000.00"), D("100.00"))]
    assert sorted(_amounts(st_feb)) == [("adjustment", -1, D("-500.00"), D("-50.00")),
                                        ("sale", 2, D("2000.00"), D("200.00"))]
    adj = next(ln for ln in st_feb.lines if ln.kind == "adjustment")
    assert (adj.order_id, adj.order_line_id, adj.refers_statement_id) == (jan.id, jan.lines[0].id, st_jan.id)
    assert adj.rule == "Nutrition: 10%"
    assert (st_feb.sales_base, st_feb.adjustment_base, st_feb.net_base) == (D("2000.00"), D("-500.00"),
                                                                           D("1500.00"))
    assert (st_feb.gross_amount, st_feb.cap_amount, st_feb.total) == (D("150.00"), D("450.00"), D("150.00"))
    # Regenerating February (still a draft) does not count the return twice, nor does March.
    generate("2026-02")
    assert statement_of(org.rep1, "2026-02").total == D("150.00")
    assert feb.id in {ln.order_id for ln in statement_of(org.rep1, "2026-02").lines}
    generate("2026-03")
    assert statement_of(org.rep1, "2026-03") is None


def test_late_return_on_a_capped_month_claws_back_only_what_was_paid(org, cats, product, sale, give_back,
                                                                     generate, statement_of, approve):
    p = product(cats["hi"], "2500.00")
    jan = sale(org.rep1, [(p, 4)], completed=JAN)  # 10,000.00 at 40 % = 4,000.00, capped to 3,000.00
    generate("2026-01")
    approve(statement_of(org.rep1, "2026-01"), org.users["finance"])
    give_back(jan, {0: 1})  # 2,500.00 back: 40 % = 1,000.00, but only 75 % of it was paid
    generate("2026-02")
    st = statement_of(org.rep1, "2026-02")
    assert _amounts(st) == [("adjustment", -1, D("-2500.00"), D("-750.00"))]
    assert st.lines[0].cap_factor == D("0.75")
    # Nothing else sold in February: the net is negative, no cap applies to a clawback.
    assert (st.net_base, st.gross_amount, st.cap_amount, st.total, st.capped) == (
        D("-2500.00"), D("-750.00"), D("0.00"), D("-750.00"), False)
    # Over both months the rep keeps 30 % of the 7,500.00 that stayed sold.
    assert statement_of(org.rep1, "2026-01").total + st.total == D("2250.00")


def test_fixed_per_unit_rule_and_its_cap_warning(org, cats, product, sale, generate, statement_of):
    pan = product(cats["fix"], "40.00", sku="PAN-1")  # 15.00 per unit > 30 % × 40.00 = 12.00
    pot = product(cats["fix"], "300.00", sku="POT-1")
    sale(org.rep1, [(pan, 7)], completed=JAN)  # base 280.00, 7 × 15.00 = 105.00
    sale(org.rep2, [(pot, 2)], completed=JAN)  # base 600.00, 2 × 15.00 = 30.00
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert _amounts(st) == [("sale", 7, D("280.00"), D("105.00"))]
    assert st.lines[0].rule == "Cookware: 15.00 per unit" and st.lines[0].per_unit == D("15.00")
    assert (st.gross_amount, st.cap_amount, st.total, st.capped) == (D("105.00"), D("84.00"), D("84.00"), True)
    assert any("PAN-1 at 40.00" in w and "POT-1" not in w for w in st.warnings)
    st2 = statement_of(org.rep2, "2026-01")
    assert (st2.gross_amount, st2.total, st2.capped) == (D("30.00"), D("30.00"), False)


def test_rounding_half_up_per_line_and_cap_on_the_month(org, category, product, sale, write_rules, generate,
                                                        statement_of):
    cat = category("Snacks")
    write_rules("categories:\n  Snacks: {percent: 5}\n")
    p = product(cat, "10.50")
    for _ in range(3):
        sale(org.rep1, [(p, 1)], completed=JAN)  # each line: 5 % of 10.50 = 0.525 → 0.53
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert [ln.amount for ln in st.lines] == [D("0.53")] * 3
    assert st.gross_amount == D("1.59")  # not 1.58 (= 5 % of 31.50 rounded once)
    assert st.cap_amount == D("9.45") and st.total == D("1.59")


def test_cap_rounds_half_up_on_the_month_total(org, category, product, sale, write_rules, generate, statement_of):
    cat = category("Snacks")
    write_rules("categories:\n  Snacks: {percent: 50}\n")
    p = product(cat, "33.35")
    sale(org.rep1, [(p, 1)], completed=JAN)  # gross 16.675 → 16.68; cap 30 % × 33.35 = 10.005 → 10.01
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert (st.gross_amount, st.cap_amount, st.total) == (D("16.68"), D("10.01"), D("10.01"))


def test_order_discount_spread_over_lines_and_gifts_earn_nothing(org, cats, product, sale, generate, statement_of):
    a, b = product(cats["lo"], "100.00"), product(cats["fix"], "100.00")
    gift = product(cats["fix"], "50.00")
    sale(org.rep1, [(a, 2), (b, 1)], total="270.00", gifts=[(gift, 3)], completed=JAN)  # 30.00 order discount
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    # each unit is worth 90.00 to the customer; the gift line (3 × per_unit) is not a sale
    assert _amounts(st) == [("sale", 2, D("180.00"), D("18.00")), ("sale", 1, D("90.00"), D("15.00"))]
    assert st.sales_base == D("270.00")


def test_subcategories_inherit_and_default_rule(org, category, product, sale, write_rules, generate, statement_of):
    top = category("Beauty")
    sub = category("Lipstick", parent=top)
    own = category("Perfume", parent=top)
    other = category("Books")
    write_rules("categories:\n  Beauty: {percent: 10}\n  Perfume: {percent: 20}\ndefault: {percent: 1}\n")
    lines = [(product(sub, "100.00"), 1), (product(own, "100.00"), 1), (product(other, "100.00"), 1),
             (product(None, "100.00"), 1)]
    sale(org.rep1, lines, completed=JAN)
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert [(ln.rule, ln.amount) for ln in st.lines] == [
        ("Beauty: 10%", D("10.00")), ("Perfume: 20%", D("20.00")), ("default: 1%", D("1.00")),
        ("default: 1%", D("1.00"))]


def test_no_rule_earns_nothing_but_counts_for_the_cap(org, category, product, sale, write_rules, generate,
                                                      statement_of):
    hi, plain = category("Hi"), category("Plain")
    write_rules("categories:\n  Hi: {percent: 60}\n")
    sale(org.rep1, [(product(hi, "100.00"), 1), (product(plain, "900.00"), 1)], completed=JAN)
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert [(ln.rule, ln.amount) for ln in st.lines] == [("Hi: 60%", D("60.00")), ("(no rule)", D("0.00"))]
    assert (st.net_base, st.cap_amount, st.total, st.capped) == (D("1000.00"), D("300.00"), D("60.00"), False)


@pytest.mark.parametrize("dovetail_settings", [{"performance": {"commission_cap": "0.25"}}])
def test_commission_cap_setting(org, cats, product, sale, generate, statement_of, dovetail_settings):
    sale(org.rep1, [(product(cats["hi"], "1000.00"), 1)], completed=JAN)
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert (st.cap_rate, st.cap_amount, st.total) == (D("0.2500"), D("250.00"), D("250.00"))


def test_a_cap_above_thirty_percent_refuses_to_start(dovetail_config_dir, dovetail_database_url):
    from core.app import create_app
    from core.errors import ConfigError

    (dovetail_config_dir / "dovetail.yaml").write_text(
        "locale: en\nsettings:\n  performance:\n    commission_cap: 0.4\n", encoding="utf-8")
    with pytest.raises(ConfigError) as exc:
        create_app(dovetail_config_dir, plugins=["crm", "catalog", "orders", "performance"], testing=True,
                   config={"database_url": dovetail_database_url, "secret_key": "x"})
    text = str(exc.value)
    assert "dovetail.yaml:4:21" in text and "Regulations on Direct Selling Administration" in text


def test_stale_draft_cannot_be_approved_and_frozen_statements_stay(org, cats, product, sale, give_back, generate,
                                                                   statement_of, approve):
    from core.errors import Conflict

    p = product(cats["lo"], "100.00")
    order = sale(org.rep1, [(p, 3)], completed=JAN)
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    give_back(order, {0: 1})
    with pytest.raises(Conflict, match="out of date"):
        approve(st, org.users["finance"])
    generate("2026-01")
    st = statement_of(org.rep1, "2026-01")
    assert st.total == D("20.00")
    approve(st, org.users["finance"])
    st = statement_of(org.rep1, "2026-01")
    assert st.status == "approved" and st.approved_at is not None
    assert st.approved_by_id == org.users["finance"].id


def test_rules_change_makes_a_draft_stale(org, cats, product, sale, generate, statement_of, approve, write_rules):
    from core.errors import Conflict

    sale(org.rep1, [(product(cats["lo"], "100.00"), 1)], completed=JAN)
    generate("2026-01")
    write_rules("categories:\n  Nutrition: {percent: 12}\n")
    with pytest.raises(Conflict, match="commission rules changed"):
        approve(statement_of(org.rep1, "2026-01"), org.users["finance"])


def test_nobody_approves_their_own_statement(org, cats, product, sale, generate, statement_of):
    from core import statemachine
    from core.errors import Conflict

    sale(org.finance, [(product(cats["lo"], "100.00"), 1)], completed=JAN)
    generate("2026-01")
    with pytest.raises(Conflict, match="nobody approves their own"):
        statemachine.perform("commission_statement", statement_of(org.finance, "2026-01"), "approve", org.finance)
