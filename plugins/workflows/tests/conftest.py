"""Fixtures for the workflows tests: a tiny test plugin with a ``ticket`` entity, and order helpers."""

from __future__ import annotations

import types
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Integer, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from core import hookimpl
from core.db import IdMixin, db
from core.errors import Conflict
from core.registry import Permission, PluginManifest, WorkflowAction, WorkflowEntity


class Ticket(IdMixin, db.Model):
    """A record driven by the test workflow."""

    __tablename__ = "wftest_ticket"

    title: Mapped[str] = mapped_column(String(80), default="")
    status: Mapped[str] = mapped_column(String(30), default="open")
    amount: Mapped[Decimal] = mapped_column(Numeric(14, 2), default=Decimal("0"))
    stamps: Mapped[int] = mapped_column(Integer, default=0)


TICKET_WORKFLOW = {
    "entity": "ticket", "field": "status",
    "states": {"open": {"initial": True}, "review": {}, "done": {"final": True}},
    "transitions": {
        "submit": {"from": "open", "to": "review"},
        "close": {"from": "review", "to": "done", "guard": "ticket.amount > 0"},
    },
}


def _stamp(record: Any, ctx: Any) -> None:
    record.stamps = (record.stamps or 0) + 1


def _explode(record: Any, ctx: Any) -> None:
    record.title = "changed by a failing action"
    db.session.flush()
    raise Conflict(f"Cannot {ctx.transition} ticket {record.id}: the test action refuses.")


def _make_wftest() -> types.ModuleType:
    mod = types.ModuleType("wftest_plugin")

    @hookimpl
    def plugin_manifest():
        return PluginManifest(name="wftest", version="0.1")

    @hookimpl
    def register_models():
        return [Ticket]

    @hookimpl
    def register_permissions():
        return [Permission("wftest.ticket.close", "Close test tickets")]

    @hookimpl
    def register_workflow_actions():
        return [WorkflowAction("wftest.stamp", _stamp, "Count a stamp"),
                WorkflowAction("wftest.explode", _explode, "Always fails"),
                WorkflowAction("wftest.only_tasks", _stamp, "For another entity", entities=("task",))]

    @hookimpl
    def register_workflow_entities():
        return [WorkflowEntity(
            "ticket", Ticket, "status",
            lambda t: {"ticket": {"id": t.id, "status": t.status, "amount": t.amount, "title": t.title}},
            {"ticket": ("id", "status", "amount", "title")}, "wftest.ticket",
            default_workflow=TICKET_WORKFLOW, label=lambda t: f"ticket {t.id}")]

    for fn in (plugin_manifest, register_models, register_permissions, register_workflow_actions,
               register_workflow_entities):
        setattr(mod, fn.__name__, fn)
    return mod


WFTEST = _make_wftest()


@pytest.fixture
def dovetail_extra_plugins():
    return {"wftest": WFTEST}


@pytest.fixture
def wf_dir(dovetail_config_dir) -> Path:
    """config/workflows of this test's copied config folder."""
    d = dovetail_config_dir / "workflows"
    d.mkdir(exist_ok=True)
    return d


def _write(path: Path, text: str) -> None:
    """Write a workflow file so its change is seen even within the same clock tick."""
    import os

    old = path.stat().st_mtime_ns if path.exists() else 0
    path.write_text(text, encoding="utf-8")
    st = path.stat()
    if st.st_mtime_ns <= old:
        os.utime(path, ns=(st.st_atime_ns, old + 1_000_000))


@pytest.fixture
def make_product(app):
    from plugins.catalog.models import Product

    def factory(price: str = "100.00", sku: str | None = None) -> Any:
        n = (db.session.query(Product).count() or 0) + 1
        p = Product(sku=sku or f"WF-{n:04d}", name=f"Product {n}", unit="件", price=Decimal(price),
                    cost=Decimal("10.00"), active=True, custom={})
        db.session.add(p)
        db.session.commit()
        return p

    return factory


@pytest.fixture
def make_customer(app):
    from plugins.crm.models import Customer

    def factory(owner: Any = None) -> Any:
        n = (db.session.query(Customer).count() or 0) + 1
        phone = f"139{n:08d}"
        c = Customer(name=f"客户{n}", phone=phone, phones=[phone], region="华东", tier="standard", tags=[],
                     owner_id=getattr(owner, "id", owner), custom={})
        db.session.add(c)
        db.session.commit()
        return c

    return factory


def _new_order(api: Any, customer: Any, *products: Any, qty: int = 1) -> dict:
    body = {"customer_id": customer.id, "lines": [{"product_id": p.id, "quantity": qty} for p in products]}
    r = api.post("/api/v1/orders", json=body)
    assert r.status_code == 201, r.json
    return r.json


def _go(api: Any, oid: int, key: str, **kw: Any) -> Any:
    return api.post(f"/api/v1/orders/{oid}/transitions", json={"transition": key, **kw})


@pytest.fixture
def wf(apply_config):
    """Helpers: ``wf.write(path, text)``, ``wf.apply()`` (the ``apply_config`` fixture: an edited file
    takes effect only when the config is applied), ``wf.new_order(api, customer, *products)``,
    ``wf.go(api, id, key)``."""
    return types.SimpleNamespace(write=_write, apply=apply_config, new_order=_new_order, go=_go)
