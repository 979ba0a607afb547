from __future__ import annotations

from types import SimpleNamespace

import pytest


@pytest.fixture
def dovetail_plugins():
    """catalog + inventory only: inventory must work without orders or crm."""
    return ["catalog", "inventory"]


@pytest.fixture
def stockroom(app):
    """Two warehouses and three products; returns a namespace of ids and helpers."""
    from core.db import db
    from plugins.catalog.models import Product
    from plugins.inventory.models import Warehouse

    sh = Warehouse(code="WH-SH", name="上海仓")
    gz = Warehouse(code="WH-GZ", name="广州仓")
    products = [Product(sku=f"SKU-00{i}", name=f"产品{i}", price="100.00", cost=f"{10 * i}.50")
                for i in (1, 2, 3)]
    db.session.add_all([sh, gz, *products])
    db.session.commit()
    return SimpleNamespace(sh=sh.id, gz=gz.id, p1=products[0].id, p2=products[1].id, p3=products[2].id)

