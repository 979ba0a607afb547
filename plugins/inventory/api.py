"""REST: ``/api/v1/warehouses``, ``/api/v1/stock`` (levels, alerts, movements, reorder points)."""

from __future__ import annotations

from flask.views import MethodView
from sqlalchemy import Select, or_

from core.api import Blueprint, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.db import db
from core.scope import dump, get_for, select_for
from plugins.catalog.public import Product, can_read_cost
from plugins.inventory import services
from plugins.inventory.models import Movement, StockLevel, Warehouse
from plugins.inventory.schemas import (
    AlertArgs,
    MovementArgs,
    MovementIn,
    MovementOut,
    MovementResult,
    ReorderPointIn,
    StockArgs,
    StockOut,
    WarehouseArgs,
    WarehouseIn,
    WarehouseOut,
    WarehousePatch,
)

warehouses_blp = Blueprint("inventory_warehouses", __name__, url_prefix="/warehouses",
                           description="Warehouses")
stock_blp = Blueprint("inventory_stock", __name__, url_prefix="/stock",
                      description="Stock levels, low-stock alerts and the movement ledger")

WH_READ, WH_WRITE = "inventory.warehouse.read", "inventory.warehouse.write"
STOCK_READ, STOCK_MOVE = "inventory.stock.read", "inventory.stock.move"


# Checks the permission before the body is parsed (403 comes before 422).
needs = permission_required



# ---------------------------------------------------------------------------
# Warehouses
# ---------------------------------------------------------------------------


@warehouses_blp.route("")
class WarehousesView(MethodView):
    @needs(WH_READ)
    @warehouses_blp.arguments(WarehouseArgs, location="query")
    @warehouses_blp.response(200, page_schema(WarehouseOut))
    def get(self, args):
        """List warehouses (search q, active)"""
        user = require(WH_READ)
        stmt = select_for(Warehouse, WH_READ, user)
        if args.get("q"):
            q = args["q"].strip()
            stmt = stmt.where(or_(Warehouse.code.icontains(q, autoescape=True),
                                  Warehouse.name.icontains(q, autoescape=True)))
        if args.get("active") is not None:
            stmt = stmt.where(Warehouse.active.is_(args["active"]))
        rows, total = page_of(apply_sort(stmt, Warehouse, args.get("sort"), default="code"), args)
        return _json(page_body(dump(WarehouseOut(), rows, Warehouse, user, many=True), total, args))

    @needs(WH_WRITE)
    @warehouses_blp.arguments(WarehouseIn)
    @warehouses_blp.response(201, WarehouseOut)
    def post(self, data):
        """Create a warehouse"""
        user = require(WH_WRITE)
        wh = services.create_warehouse(data, user)
        db.session.commit()
        return _json(dump(WarehouseOut(), wh, Warehouse, user), 201)


@warehouses_blp.route("/<int:warehouse_id>")
class WarehouseView(MethodView):
    @warehouses_blp.response(200, WarehouseOut)
    def get(self, warehouse_id):
        """One warehouse"""
        user = require(WH_READ)
        return _json(dump(WarehouseOut(), get_for(Warehouse, warehouse_id, WH_READ, user), Warehouse, user))

    @needs(WH_WRITE)
    @warehouses_blp.arguments(WarehousePatch(partial=True))
    @warehouses_blp.response(200, WarehouseOut)
    def patch(self, data, warehouse_id):
        """Rename, re-code or (de)activate a warehouse"""
        user = require(WH_WRITE)
        wh = get_for(Warehouse, warehouse_id, WH_WRITE, user)
        services.update_warehouse(wh, data)
        db.session.commit()
        return _json(dump(WarehouseOut(), wh, Warehouse, user))

    @warehouses_blp.response(204)
    def delete(self, warehouse_id):
        """Delete a warehouse without stock history (otherwise 409: deactivate it)"""
        user = require(WH_WRITE)
        services.delete_warehouse(get_for(Warehouse, warehouse_id, WH_WRITE, user))
        db.session.commit()
        return "", 204


# ---------------------------------------------------------------------------
# Stock
# ---------------------------------------------------------------------------


def _stock_page(stmt, args, user):
    rows, total = page_of(stmt, args)
    defaults = services.points_for(r.product_id for r in rows)
    return page_body([services.stock_dict(r, defaults) for r in rows], total, args)


@stock_blp.route("")
class StockView(MethodView):
    @needs(STOCK_READ)
    @stock_blp.arguments(StockArgs, location="query")
    @stock_blp.response(200, page_schema(StockOut))
    def get(self, args):
        """Stock per product and warehouse (filters product_id, warehouse_id, low, q)"""
        user = require(STOCK_READ)
        stmt = select_for(StockLevel, STOCK_READ, user).join(Product, Product.id == StockLevel.product_id)
        if args.get("product_id") is not None:
            stmt = stmt.where(StockLevel.product_id == args["product_id"])
        if args.get("warehouse_id") is not None:
            stmt = stmt.where(StockLevel.warehouse_id == args["warehouse_id"])
        if args.get("q"):
            q = args["q"].strip()
            stmt = stmt.where(or_(Product.sku.icontains(q, autoescape=True),
                                  Product.name.icontains(q, autoescape=True)))
        if args.get("low") is True:
            stmt = services.alerts_query(stmt)
        elif args.get("low") is False:
            point = services.effective_point()
            stmt = services.with_points(stmt).where(or_(point.is_(None),
                                                        StockLevel.on_hand - StockLevel.reserved >= point))
        return _json(_stock_page(_sort_stock(stmt, args.get("sort") or "id"), args, user))


def _sort_stock(stmt: Select, sort: str) -> Select:
    """Order stock rows by ``sort``; ``available`` (on hand minus reserved) is computed, not a column."""
    if sort.lstrip("-") == "available":
        expr = StockLevel.on_hand - StockLevel.reserved
        return stmt.order_by(expr.desc() if sort.startswith("-") else expr.asc(), StockLevel.id)
    return apply_sort(stmt, StockLevel, sort)


@stock_blp.route("/alerts")
class AlertsView(MethodView):
    @needs(STOCK_READ)
    @stock_blp.arguments(AlertArgs, location="query")
    @stock_blp.response(200, page_schema(StockOut, "StockAlertPage"))
    def get(self, args):
        """Low-stock alerts: rows whose available is below the reorder point, biggest shortfall first"""
        user = require(STOCK_READ)
        stmt = services.alerts_query(select_for(StockLevel, STOCK_READ, user))
        if args.get("warehouse_id") is not None:
            stmt = stmt.where(StockLevel.warehouse_id == args["warehouse_id"])
        sort = args.get("sort")
        if not sort:  # the biggest shortfall first
            shortfall = services.effective_point() - (StockLevel.on_hand - StockLevel.reserved)
            stmt = stmt.order_by(shortfall.desc(), StockLevel.id)
        else:
            stmt = _sort_stock(stmt, sort)
        return _json(_stock_page(stmt, args, user))


@stock_blp.route("/reorder-points")
class ReorderPointsView(MethodView):
    @needs(WH_WRITE)
    @stock_blp.arguments(ReorderPointIn)
    @stock_blp.response(200, StockOut(many=True))
    def put(self, data):
        """Set or clear a reorder point (a warehouse's, or the product default without warehouse_id)"""
        require(WH_WRITE)
        services.set_reorder_point(data["product_id"], data["reorder_point"], data.get("warehouse_id"))
        db.session.commit()
        rows = db.session.scalars(select_for(StockLevel, STOCK_READ).where(
            StockLevel.product_id == data["product_id"]).order_by(StockLevel.warehouse_id)).all()
        defaults = services.points_for([data["product_id"]])
        return _json([services.stock_dict(r, defaults) for r in rows])


@stock_blp.route("/movements")
class MovementsView(MethodView):
    @needs(STOCK_READ)
    @stock_blp.arguments(MovementArgs, location="query")
    @stock_blp.response(200, page_schema(MovementOut))
    def get(self, args):
        """The movement ledger (filters product_id, warehouse_id, kind, source_type/source_id, since, until)"""
        user = require(STOCK_READ)
        stmt = select_for(Movement, STOCK_READ, user)
        for key in ("product_id", "warehouse_id", "kind", "source_type", "source_id"):
            if args.get(key) is not None:
                stmt = stmt.where(getattr(Movement, key) == args[key])
        if args.get("since"):
            stmt = stmt.where(Movement.created_at >= args["since"])
        if args.get("until"):
            stmt = stmt.where(Movement.created_at < args["until"])
        rows, total = page_of(apply_sort(stmt, Movement, args.get("sort"), default="-id"), args)
        return _json(page_body(movement_dicts(rows, user), total, args))

    @needs(STOCK_MOVE)
    @stock_blp.arguments(MovementIn)
    @stock_blp.response(201, MovementResult)
    def post(self, data):
        """Post a receipt, issue, adjustment or transfer"""
        user = require(STOCK_MOVE)
        moves = post_movement(data)
        db.session.commit()
        return _json({"movements": movement_dicts(moves, user)}, 201)


def movement_dicts(rows, user) -> list[dict]:
    """Movements as the API shows them: ``unit_cost`` only for users who may see costs."""
    out = dump(MovementOut(), rows, Movement, user, many=True)
    if not can_read_cost(user):
        for item in out:
            item.pop("unit_cost", None)
    return out


def post_movement(data) -> list[Movement]:
    """Dispatch a validated :class:`MovementIn` to the service; shared by the API and web form."""
    kind, pid, wid = data["kind"], data["product_id"], data["warehouse_id"]
    common = {"reference": data.get("reference")}
    if kind == "receipt":
        return [services.receive(pid, wid, data["quantity"], unit_cost=data.get("unit_cost"),
                                 reason=data.get("reason"), **common)]
    if kind == "issue":
        return [services.issue(pid, wid, data["quantity"], reason=data.get("reason"), **common)]
    if kind == "transfer":
        return list(services.transfer(pid, wid, data["to_warehouse_id"], data["quantity"],
                                      reason=data.get("reason"), **common))
    if data.get("counted") is not None:
        mv = services.count(pid, wid, data["counted"], reason=data["reason"].strip(), **common)
        return [mv] if mv is not None else []
    return [services.adjust(pid, wid, data["quantity"], data["reason"], **common)]
