"""The rep's and the manager's day in a real browser, in Chinese (issue 10, acceptance 4).

Headless Chromium drives a running server: a rep (rep1) signs in, creates a customer, logs a
call, places an order to which a promotion applies and confirms it; a sales manager (manager1,
rep1's team manager) finds the order, records the payment, ships and completes it and sees rep1
on the leaderboard; finance generates the month's commission statements; the manager opens
rep1's statement and approves it. Every step is asserted on visible page text and screenshotted
(``build/screenshots/sqlite`` or ``.../postgresql``; ``DOVETAIL_SCREENSHOTS`` names another
root; the folder is named in the warnings summary of the run).

One test on purpose: the steps depend on each other, and one module keeps the server and the
browser on one pytest-xdist worker.
"""

from __future__ import annotations

import re
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

CUSTOMER = "浏览器测试客户张三"
PHONE = "13812345678"
CALL_SUBJECT = "首次电话回访"
CALL_OUTCOME = "已接通，有意向"
QUANTITIES = (2, 1)
PROMOTION_PERCENT = Decimal("10")  # the setup's promotion: 10 % off the order
FEN = Decimal("0.01")


def money(value: Decimal) -> str:
    """How the pages print an amount: two decimals."""
    return f"{value.quantize(FEN, ROUND_HALF_UP)}"


def sign_in(page: Page, server: Any, username: str, shown: str | None = None) -> None:
    """Sign in through the login form and land on the dashboard, the user's name (``shown``:
    their display name) at the top."""
    page.goto(f"{server.url}/login")
    page.get_by_label("用户名").fill(username)
    page.get_by_label("密码").fill(server.password)
    page.get_by_role("button", name="登录").click()
    expect(page.get_by_role("heading", name="仪表盘")).to_be_visible()
    expect(page.locator("header .who")).to_contain_text(shown or username)


def sign_out(page: Page) -> None:
    page.get_by_role("button", name="退出").click()
    expect(page.get_by_label("用户名")).to_be_visible()


def field(page: Page, label: str) -> Any:
    """The value next to a label in a detail page's definition list."""
    return page.locator(f"dt:text-is('{label}') + dd")


def transition_form(page: Page, transition: str) -> Any:
    """The form of one workflow button (its hidden ``transition`` input names it)."""
    return page.locator("form").filter(has=page.locator(f"input[name=transition][value={transition}]"))


def test_rep_and_manager_day_in_chinese(page: Page, server: Any, shots: Any) -> None:
    page.set_default_timeout(15_000)
    first, second = server.products
    subtotal = first.price * QUANTITIES[0] + second.price * QUANTITIES[1]
    discount = (subtotal * PROMOTION_PERCENT / 100).quantize(FEN, ROUND_HALF_UP)
    total = subtotal - discount

    # --- the rep: customer, call, order with a promotion, confirm --------------------------
    sign_in(page, server, "rep1")
    expect(page.locator("nav")).to_contain_text("客户")
    shots(page, "rep-dashboard")
    # the month so far (demo orders may already count), to compare with the leaderboard later
    page.get_by_role("link", name="我的业绩").click()
    revenue_row = page.get_by_role("row").filter(has=page.get_by_role("rowheader", name=re.compile("^营业额")))
    revenue_before = Decimal(revenue_row.locator("td").first.inner_text().strip())
    shots(page, "rep-my-performance")

    page.get_by_role("link", name="客户", exact=True).click()
    page.get_by_role("link", name="新建客户").click()
    expect(page.get_by_role("heading", name="新建客户")).to_be_visible()
    page.get_by_label("名称").fill(CUSTOMER)
    page.get_by_label("手机").fill(PHONE)
    shots(page, "rep-customer-form")
    page.get_by_role("button", name="保存").click()
    expect(page.get_by_text("客户已保存。")).to_be_visible()
    expect(page.get_by_role("heading", name=CUSTOMER)).to_be_visible()
    expect(field(page, "负责人")).to_have_text("rep1")
    shots(page, "rep-customer-saved")

    call = page.locator("form[action$='/activities']")
    call.get_by_label("类型").select_option("call")
    call.get_by_label("主题").fill(CALL_SUBJECT)
    call.get_by_label("结果").fill(CALL_OUTCOME)
    call.get_by_role("button", name="保存").click()
    logged = page.get_by_role("row").filter(has_text=CALL_SUBJECT)
    expect(logged).to_contain_text(CALL_OUTCOME)
    shots(page, "rep-call-logged")

    page.get_by_role("link", name="为该客户新建订单").click()
    expect(page.get_by_role("heading", name="新建订单")).to_be_visible()
    expect(page.locator("select[name=customer_id] option:checked")).to_contain_text(CUSTOMER)
    for i, (product, quantity) in enumerate(zip(server.products, QUANTITIES, strict=True), start=1):
        page.get_by_label(f"商品 {i}", exact=True).select_option(str(product.id))
        page.get_by_label(f"数量 {i}", exact=True).fill(str(quantity))
    shots(page, "rep-order-form")
    page.get_by_role("button", name="创建订单").click()
    expect(page.get_by_text(re.compile(r"订单 SO-\d{4}-\d+ 已创建。"))).to_be_visible()
    number = re.search(r"SO-\d{4}-\d+", page.get_by_role("heading").first.inner_text()).group(0)
    order_url = page.url
    expect(field(page, "客户")).to_have_text(CUSTOMER)
    expect(field(page, "小计")).to_have_text(money(subtotal))
    expect(field(page, "折扣")).to_have_text(money(discount))
    expect(field(page, "合计")).to_have_text(money(total))
    applied = page.locator("table").filter(has_text="促销").last
    expect(applied).to_contain_text(server.promotion)
    shots(page, "rep-order-created")

    page.get_by_role("button", name="确认", exact=True).click()
    history = page.get_by_role("row").filter(has_text="rep1").last
    expect(history).to_contain_text("已确认")
    expect(transition_form(page, "confirm")).to_have_count(0)
    shots(page, "rep-order-confirmed")
    sign_out(page)

    # --- the manager: the team's order, paid, shipped, completed; the leaderboard ---------
    sign_in(page, server, "manager1")
    page.get_by_role("link", name="订单", exact=True).click()
    row = page.get_by_role("row").filter(has_text=number)
    expect(row).to_contain_text(CUSTOMER)
    expect(row).to_contain_text("rep1")
    expect(row).to_contain_text(money(total))
    shots(page, "manager-orders")
    row.get_by_role("link", name=number).click()
    expect(page).to_have_url(order_url)
    expect(field(page, "合计")).to_have_text(money(total))
    expect(page.locator("table").filter(has_text="促销").last).to_contain_text(server.promotion)

    pay = transition_form(page, "pay")
    pay.get_by_label("付款方式").select_option("wechat_pay")
    pay.get_by_role("button", name="登记付款").click()
    expect(field(page, "已付款")).to_have_text(money(total))
    ship = transition_form(page, "ship")
    ship.get_by_label("承运商").fill("顺丰速运")
    ship.get_by_label("运单号").fill("SF1234567890")
    ship.get_by_role("button", name="发货").click()
    expect(page.get_by_role("row").filter(has_text="SF1234567890")).to_contain_text("顺丰速运")
    page.get_by_role("button", name="完成", exact=True).click()
    expect(transition_form(page, "complete")).to_have_count(0)
    expect(page.get_by_role("row").filter(has_text="manager1").last).to_contain_text("已完成")
    line_totals = {}
    for product in server.products:
        cells = page.get_by_role("row").filter(has_text=product.sku).first.locator("td")
        line_totals[product.sku] = Decimal(cells.nth(5).inner_text().strip())
    assert sum(line_totals.values()) == total
    shots(page, "manager-order-completed")

    page.get_by_role("link", name="排行榜").click()
    expect(page.get_by_role("heading", name=re.compile("排行榜"))).to_be_visible()
    expect(page.get_by_text("营业额：按下单日期统计已付款、已发货和已完成的订单，扣除退货。")).to_be_visible()
    board = page.get_by_role("row").filter(has_text="rep1")
    expect(board).to_contain_text("华东一组")
    expect(board.locator("td").nth(3)).to_have_text(money(revenue_before + total))
    shots(page, "manager-leaderboard")
    sign_out(page)

    # --- finance: the month's commission statements ---------------------------------------
    sign_in(page, server, "finance1", "财务一")
    page.get_by_role("link", name="提成").click()
    expect(page.get_by_role("heading", name="提成结算单")).to_be_visible()
    page.locator("form[action$='/statements/generate']").get_by_role("button", name="生成").click()
    expect(page.get_by_text(re.compile(r"已为 \d{4}-\d{2} 生成 \d+ 张结算单"))).to_be_visible()
    expect(page.get_by_role("row").filter(has_text="rep1")).to_have_count(1)
    shots(page, "finance-statements-generated")
    sign_out(page)

    # --- the manager approves rep1's statement ---------------------------------------------
    sign_in(page, server, "manager1")
    page.get_by_role("link", name="提成").click()
    page.get_by_role("row").filter(has_text="rep1").get_by_role("link").first.click()
    expect(page.get_by_role("heading", name=re.compile(r"提成结算单 \d{4}-\d{2} · rep1"))).to_be_visible()
    for product in server.products:
        line = page.get_by_role("row").filter(has_text=number).filter(has_text=product.sku)
        category = line.locator("td").nth(5).inner_text().strip()
        base = line_totals[product.sku]
        amount = (base * server.commission_percent[category] / 100).quantize(FEN, ROUND_HALF_UP)
        expect(line).to_contain_text(money(base))
        expect(line.locator("td").last).to_have_text(money(amount))
    # not capped here (the rules pay at most 10 %, the cap is 30 %): the commission is the lines' sum
    lines_table = page.locator("table").filter(has_text="计提基数")
    amounts = [Decimal(t.strip()) for t in lines_table.locator("tbody tr td:last-child").all_inner_texts()]
    expect(field(page, "提成")).to_have_text(f"{money(sum(amounts))} CNY")
    shots(page, "manager-statement")
    page.get_by_role("button", name="审批").click()
    expect(page.get_by_text("结算单状态现为")).to_be_visible()
    expect(page.get_by_role("button", name="审批")).to_have_count(0)
    expect(field(page, "已批准")).to_contain_text(re.compile(r"\d{4}-\d{2}-\d{2}"))
    shots(page, "manager-statement-approved")
