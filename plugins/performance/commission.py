"""Monthly commission statements: single level, own sales only, capped per rep-month.

For rep R and month M (``generate``):

* **Sale lines** — every non-gift line of R's **own** orders (``owner_id`` = R; never another
  rep's, there is no upline or downline) **completed** in M (``completed_at``, local month),
  for the units not returned so far: ``base`` = net unit value (the orders plugin's
  ``unit_net``: order discounts spread over the lines) × net units, rounded half-up to the fen;
  ``amount`` = the category's rule on that base (percent) or net units × ``per_unit``, rounded
  half-up per line. A line under no rule earns 0.00 but its base still counts as sales.
* **Adjustment lines** — for order lines whose sale sits on a *frozen* statement (any state
  but the workflow's initial one) of an earlier month, any change since (a return received
  later): the difference in units and base, at the rule recorded on the original line,
  scaled by the original statement's cap factor (total ÷ gross) when that one was capped, so
  a clawback never takes back more than was paid. Rounded half-up per line.
* **Cap** — on the month's net: ``cap_amount`` = ``commission_cap`` × max(net base, 0),
  rounded half-up; ``total`` = ``cap_amount`` when the lines add up to more, else their sum
  (negative when only clawbacks remain).

Drafts are regenerated from scratch each time; frozen statements are never touched.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import lazyload, selectinload

from core import audit
from core.db import db, lock_for_update, quantize, savepoint_or_conflict, utcnow
from core.errors import Conflict
from core.models import TransitionLog, User
from core.statemachine import machine_for
from plugins.performance.models import SellerProfile, Statement, StatementLine
from plugins.performance.periods import parse_month
from plugins.performance.rules import Rule, RuleSet, cap_rate, load_rules
from plugins.performance.sources import Order, OrderLine, orders_settings, unit_net

ZERO = Decimal("0.00")
ENTITY = "commission_statement"


def initial_state() -> str:
    return machine_for(ENTITY).initial


def is_frozen(st: Statement) -> bool:
    return st.status != initial_state()


@dataclass
class LineData:
    kind: str
    order: Any
    line: Any
    quantity: int
    base: Decimal
    amount: Decimal
    rule: str
    rate_percent: Decimal | None = None
    per_unit: Decimal | None = None
    cap_factor: Decimal | None = None
    refers_statement_id: int | None = None

    def key(self) -> tuple[Any, ...]:
        return (self.kind, self.line.id, self.quantity, quantize(self.base), quantize(self.amount))


@dataclass
class Result:
    period: str
    generated: list[Statement] = field(default_factory=list)
    skipped: list[tuple[Statement, str]] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def as_dict(self, dump: Any) -> dict[str, Any]:
        return {"period": self.period, "generated": [dump(s) for s in self.generated],
                "skipped": [{"id": s.id, "rep_id": s.rep_id, "status": s.status, "reason": why}
                            for s, why in self.skipped],
                "warnings": list(self.warnings)}


# ---------------------------------------------------------------------------
# Lines
# ---------------------------------------------------------------------------


def _category_name(rules: RuleSet, category_id: int | None) -> str | None:
    return rules.names.get(category_id) if category_id is not None else None


def sale_lines(rep_id: int, period: Any, rules: RuleSet, *, exclude_statement_id: int | None) -> list[LineData]:
    """R's own order lines completed in the month, net of the units returned so far."""
    start, end = period.utc_bounds()
    orders = db.session.scalars(
        select(Order).where(Order.owner_id == rep_id, Order.completed_at.is_not(None),
                            Order.completed_at >= start, Order.completed_at < end)
        .options(selectinload(Order.lines)).order_by(Order.completed_at, Order.id)).all()
    line_ids = [ln.id for o in orders for ln in o.lines]
    taken: set[int] = set()
    for i in range(0, len(line_ids), 500):
        stmt = (select(StatementLine.order_line_id).join(Statement)
                .where(StatementLine.kind == "sale", StatementLine.order_line_id.in_(line_ids[i:i + 500])))
        if exclude_statement_id is not None:
            stmt = stmt.where(Statement.id != exclude_statement_id)
        taken |= set(db.session.scalars(stmt))
    out: list[LineData] = []
    for order in orders:
        for ln in order.lines:
            net = ln.quantity - ln.returned_quantity
            if ln.is_gift or net <= 0 or ln.id in taken:
                continue
            base = quantize(unit_net(ln, order) * net)
            rule = rules.rule_for(ln.category_id)
            out.append(_priced("sale", order, ln, net, base, rule))
    return out


def _priced(kind: str, order: Any, ln: Any, qty: int, base: Decimal, rule: Rule | None) -> LineData:
    if rule is None:
        return LineData(kind, order, ln, qty, base, ZERO, "(no rule)")
    return LineData(kind, order, ln, qty, base, quantize(rule.raw_amount(base, qty)), rule.label,
                    rule.percent, rule.per_unit)


def pending_adjustments(period: Any, rep_ids: Iterable[int] | None = None,
                        exclude: dict[int, int] | None = None) -> dict[int, list[LineData]]:
    """Per rep: adjustment lines for sales on frozen statements of months before ``period``.

    ``exclude`` maps rep id → the draft statement being regenerated (its own lines are not
    counted as already accounted for).
    """
    month = period.month
    initial = initial_state()
    stmt = (select(StatementLine, Statement)
            .join(Statement, Statement.id == StatementLine.statement_id)
            .join(OrderLine, OrderLine.id == StatementLine.order_line_id)
            .where(StatementLine.kind == "sale", Statement.status != initial, Statement.period < month,
                   OrderLine.returned_quantity > 0))
    if rep_ids is not None:
        stmt = stmt.where(Statement.rep_id.in_(list(rep_ids)))
    originals = db.session.execute(stmt).all()
    if not originals:
        return {}
    exclude = exclude or {}
    line_ids = list({sl.order_line_id for sl, _st in originals})
    accounted: dict[tuple[int, int], tuple[int, Decimal]] = {}
    for i in range(0, len(line_ids), 500):
        rows = db.session.execute(
            select(Statement.rep_id, Statement.id, StatementLine.order_line_id, StatementLine.quantity,
                   StatementLine.base_amount)
            .join(Statement, Statement.id == StatementLine.statement_id)
            .where(StatementLine.order_line_id.in_(line_ids[i:i + 500]))).all()
        for rep_id, st_id, ol_id, qty, base in rows:
            if exclude.get(rep_id) == st_id:
                continue
            q, b = accounted.get((rep_id, ol_id), (0, ZERO))
            accounted[(rep_id, ol_id)] = (q + qty, b + base)
    orders = {o.id: o for o in db.session.scalars(
        select(Order).where(Order.id.in_({sl.order_id for sl, _st in originals}))
        .options(selectinload(Order.lines)))}
    out: dict[int, list[LineData]] = defaultdict(list)
    for sl, st in sorted(originals, key=lambda p: (p[1].period, p[0].id)):
        order = orders[sl.order_id]
        ln = next(x for x in order.lines if x.id == sl.order_line_id)
        net = ln.quantity - ln.returned_quantity
        base_now = quantize(unit_net(ln, order) * net) if net > 0 else ZERO
        q_acc, b_acc = accounted.get((st.rep_id, ln.id), (0, ZERO))
        dq, db_ = net - q_acc, quantize(base_now - b_acc)
        if dq == 0 and db_ == 0:
            continue
        factor = Decimal(1)
        if st.capped and st.gross_amount > 0:
            factor = st.total / st.gross_amount
        if sl.rate_percent is not None:
            raw = db_ * sl.rate_percent / Decimal(100)
        elif sl.per_unit is not None:
            raw = sl.per_unit * dq
        else:
            raw = Decimal(0)
        rule = sl.rule + (f" × cap factor {factor.quantize(Decimal('0.0001'))} of {st.period}"
                          if factor != 1 else "")
        out[st.rep_id].append(LineData(
            "adjustment", order, ln, dq, db_, quantize(raw * factor), rule[:200], sl.rate_percent,
            sl.per_unit, factor if factor != 1 else None, st.id))
    return dict(out)


# ---------------------------------------------------------------------------
# Totals and statements
# ---------------------------------------------------------------------------


@dataclass
class Totals:
    sales_base: Decimal
    adjustment_base: Decimal
    net_base: Decimal
    gross: Decimal
    cap_amount: Decimal
    total: Decimal
    capped: bool


def totals(lines: list[LineData], cap: Decimal) -> Totals:
    sales = quantize(sum((x.base for x in lines if x.kind == "sale"), ZERO))
    adj = quantize(sum((x.base for x in lines if x.kind != "sale"), ZERO))
    net = quantize(sales + adj)
    gross = quantize(sum((x.amount for x in lines), ZERO))
    cap_amount = quantize(cap * max(net, ZERO))
    capped = gross > cap_amount
    return Totals(sales, adj, net, gross, cap_amount, cap_amount if capped else gross, capped)


def _warnings(rep_id: int, rules: RuleSet) -> list[str]:
    out = list(rules.warnings)
    prof = db.session.scalar(select(SellerProfile).where(SellerProfile.user_id == rep_id))
    if prof is None:
        out.append("This rep has no seller profile (certificate number): check before paying.")
    elif prof.status != "active":
        out.append(f"This seller's status is {prof.status}.")
    return out


def _fill(st: Statement, lines: list[LineData], t: Totals, rules: RuleSet, cap: Decimal) -> None:
    st.lines.clear()
    db.session.flush()
    for x in lines:
        st.lines.append(StatementLine(
            kind=x.kind, order_id=x.order.id, order_line_id=x.line.id, order_number=x.order.number,
            completed_at=x.order.completed_at, sku=x.line.sku, product_name=x.line.name,
            category_id=x.line.category_id, category_name=_category_name(rules, x.line.category_id),
            quantity=x.quantity, base_amount=x.base, rule=x.rule[:200], rate_percent=x.rate_percent,
            per_unit=x.per_unit, cap_factor=x.cap_factor, amount=x.amount,
            refers_statement_id=x.refers_statement_id))
    st.sales_base, st.adjustment_base, st.net_base = t.sales_base, t.adjustment_base, t.net_base
    st.gross_amount, st.cap_amount, st.total, st.capped = t.gross, t.cap_amount, t.total, t.capped
    st.cap_rate = cap
    st.rules_digest = rules.digest
    st.warnings = _warnings(st.rep_id, rules)
    st.generated_at = utcnow()


def compute(rep_id: int, period: Any, rules: RuleSet, statement_id: int | None) -> list[LineData]:
    lines = sale_lines(rep_id, period, rules, exclude_statement_id=statement_id)
    adj = pending_adjustments(period, [rep_id], {rep_id: statement_id} if statement_id else None)
    return lines + adj.get(rep_id, [])


def _rep_ids_with_sales(period: Any) -> set[int]:
    start, end = period.utc_bounds()
    return set(db.session.scalars(select(Order.owner_id).where(
        Order.owner_id.is_not(None), Order.completed_at.is_not(None), Order.completed_at >= start,
        Order.completed_at < end).distinct()))


def generate(period_text: str, *, rep_ids: Iterable[int] | None = None, user: User | None = None) -> Result:
    """Create or regenerate the month's draft statements (every rep with completed sales or
    pending adjustments, or only ``rep_ids``). Frozen statements are skipped. Caller commits."""
    period = parse_month(period_text, "period")
    month = period.month or period_text
    rules = load_rules()
    cap = cap_rate()
    result = Result(month, warnings=list(rules.warnings))
    if rep_ids is None:
        reps = _rep_ids_with_sales(period) | set(pending_adjustments(period))
    else:
        reps = set(rep_ids)
    currency = str(orders_settings().get("currency", "CNY"))
    for rep_id in sorted(reps):
        st = db.session.scalar(lock_for_update(select(Statement).options(lazyload(Statement.rep)).where(
            Statement.rep_id == rep_id, Statement.period == month)))
        if st is not None and is_frozen(st):
            result.skipped.append((st, f"already {st.status}; later changes go to a later statement"))
            continue
        lines = compute(rep_id, period, rules, st.id if st is not None else None)
        if st is None and not lines:
            continue
        created = st is None
        if created:
            st = Statement(rep_id=rep_id, period=month, status=initial_state(), currency=currency,
                           created_by_id=getattr(user, "id", None))
            with savepoint_or_conflict(f"The {month} statement of user {rep_id} is being generated by someone "
                                       "else; try again in a moment."):
                db.session.add(st)
        before = None if created else {"total": str(st.total), "lines": len(st.lines)}
        t = totals(lines, cap)
        _fill(st, lines, t, rules, cap)
        db.session.flush()
        if not created:
            audit.record(db.session, "regenerate", Statement.__tablename__, st.id, before=before,
                         after={"total": str(st.total), "lines": len(lines)})
        result.generated.append(st)
    return result


def is_current(st: Statement) -> tuple[bool, str]:
    """Whether a draft still matches what generating it now would give."""
    period = parse_month(st.period)
    rules = load_rules()
    if rules.digest != st.rules_digest:
        return False, "the commission rules changed since it was generated"
    if cap_rate() != st.cap_rate:
        return False, "the commission cap changed since it was generated"
    lines = compute(st.rep_id, period, rules, st.id)
    now = sorted(x.key() for x in lines)
    stored = sorted((sl.kind, sl.order_line_id, sl.quantity, quantize(sl.base_amount), quantize(sl.amount))
                    for sl in st.lines)
    if now != stored:
        return False, "its orders changed since it was generated (a sale completed or a return came in)"
    return True, ""


# ---------------------------------------------------------------------------
# Workflow actions and events
# ---------------------------------------------------------------------------


def action_check_current(record: Statement, ctx: Any) -> None:
    """Refuse to approve a draft that no longer matches its orders, rules or cap."""
    ok, why = is_current(record)
    if not ok:
        raise Conflict(f"The {record.period} commission statement of {record.rep.username} is out of "
                       f"date: {why}. Generate it again and review it before approving.")


def action_record_payment(record: Statement, ctx: Any) -> None:
    ref = ctx.inputs.get("reference")
    if ref:
        record.payment_reference = str(ref)[:120]


#: marks a statement transition may carry (``marks:`` in its workflow file) → (column, with actor).
STAMPS = {"approved": ("approved_at", True), "paid": ("paid_at", False)}
MARK_HELP = {"approved": "approves the statement (stamps approved_at and the approver)",
             "paid": "records that the commission was paid (stamps paid_at)"}


def after_transition(st: Statement, marks: Sequence[str]) -> None:
    """Stamp ``approved_at``/``approved_by_id``/``paid_at`` when a transition marked
    ``approved``/``paid`` happens (names in the workflow file may change, marks do not)."""
    for mark in marks:
        stamp = STAMPS.get(mark)
        if stamp is None:
            continue
        col, with_actor = stamp
        if getattr(st, col) is None:
            setattr(st, col, utcnow())
            if with_actor:  # the actor of the transition just logged (CLI and tests have no request user)
                st.approved_by_id = db.session.scalar(
                    select(TransitionLog.actor_id).where(TransitionLog.entity == ENTITY,
                                                         TransitionLog.record_id == st.id)
                    .order_by(TransitionLog.id.desc()).limit(1))
    db.session.flush()


def statement_context(st: Statement) -> dict[str, Any]:
    """Read-only values for workflow guards (``statement.total``, ``statement.rep_id`` …)."""
    return {"statement": {"id": st.id, "rep_id": st.rep_id, "period": st.period, "status": st.status,
                          "total": st.total, "gross_amount": st.gross_amount, "net_base": st.net_base,
                          "capped": st.capped, "line_count": len(st.lines),
                          "warning_count": len(st.warnings or [])}}


CONTEXT_NAMES = ("id", "rep_id", "period", "status", "total", "gross_amount", "net_base", "capped",
                 "line_count", "warning_count")


def line_count(st: Statement) -> int:
    return db.session.scalar(select(func.count()).select_from(StatementLine)
                             .where(StatementLine.statement_id == st.id)) or 0
