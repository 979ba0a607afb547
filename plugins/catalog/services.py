"""Catalog domain logic. Public API for plugins that depend on ``catalog``:

* :func:`get_product`, :func:`product_by_sku`, :func:`products_by_ids` — lookups;
* :func:`category_and_descendants` — a category id and all ids below it;
* :func:`create_product`, :func:`update_product`, :func:`delete_product`,
  :func:`create_category`, :func:`update_category`, :func:`delete_category` — validated
  writes (the caller commits);
* :func:`product_filters` — the product list query (search, category, active, custom.*);
* :data:`COST` and :func:`can_read_cost` — product costs (and what derives from them: stock
  value at cost, profit) are shown only to users with ``catalog.product.read_cost``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from marshmallow import ValidationError as MarshmallowError
from sqlalchemy import Select, or_, select

from core import custom
from core.auth import has_permission
from core.db import db, savepoint_or_conflict
from core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from core.scope import dump
from plugins.catalog.models import Category, Product
from plugins.catalog.schemas import CategoryIn, ProductIn, ProductOut

ENTITY = "product"
#: Seeing (and setting) product costs; without it the ``cost`` field is absent everywhere.
COST = "catalog.product.read_cost"


def can_read_cost(user: Any) -> bool:
    """Whether ``user`` may see costs; ``None`` (the CLI, the system) may."""
    return user is None or has_permission(user, COST)


def _check_cost_write(data: Mapping[str, Any], user: Any) -> None:
    """A cost is set only by someone who may see it (no blind overwrite, no guessing)."""
    if "cost" in data and not can_read_cost(user):
        raise PermissionDenied(f"You need the permission '{COST}' to set a product's cost.")


# ---------------------------------------------------------------------------
# Lookups
# ---------------------------------------------------------------------------


def get_product(product_id: int) -> Product:
    product = db.session.get(Product, product_id)
    if product is None:
        raise NotFound(f"No product with id {product_id}.")
    return product


def product_by_sku(sku: str) -> Product | None:
    return db.session.scalar(select(Product).where(Product.sku == sku))


def products_by_ids(ids: Iterable[int]) -> dict[int, Product]:
    ids = {int(i) for i in ids}
    if not ids:
        return {}
    return {p.id: p for p in db.session.scalars(select(Product).where(Product.id.in_(ids)))}


def category_and_descendants(category_id: int) -> list[int]:
    children: dict[int | None, list[int]] = {}
    for cid, parent in db.session.execute(select(Category.id, Category.parent_id)):
        children.setdefault(parent, []).append(cid)
    out, todo = [], [category_id]
    while todo:
        cid = todo.pop()
        if cid in out:
            continue
        out.append(cid)
        todo.extend(children.get(cid, []))
    return out


def product_filters(stmt: Select, args: Mapping[str, Any], params: Mapping[str, str]) -> Select:
    """Apply ``q``, ``category_id``, ``active`` and ``custom.*`` filters to a product query."""
    q = (args.get("q") or "").strip()
    if q:
        stmt = stmt.where(or_(Product.sku.icontains(q, autoescape=True), Product.name.icontains(q, autoescape=True),
                              Product.barcode.icontains(q, autoescape=True)))
    if args.get("category_id") is not None:
        stmt = stmt.where(Product.category_id.in_(category_and_descendants(args["category_id"])))
    if args.get("active") is not None:
        stmt = stmt.where(Product.active.is_(bool(args["active"])))
    return custom.filter_query(ENTITY, Product, stmt, params)


# ---------------------------------------------------------------------------
# Products
# ---------------------------------------------------------------------------


def _load(schema: Any, data: Mapping[str, Any], *, partial: bool = False) -> dict[str, Any]:
    try:
        return schema.load(dict(data), partial=partial)
    except MarshmallowError as err:
        raise ValidationError("Invalid product; see fields.", fields=err.messages) from None


def _check_category(category_id: int | None) -> None:
    if category_id is not None and db.session.get(Category, category_id) is None:
        raise ValidationError(f"No category with id {category_id}.",
                              fields={"category_id": [f"No category with id {category_id}."]})


def _check_sku_free(sku: str, own_id: int | None = None) -> None:
    other = db.session.scalar(select(Product.id).where(Product.sku == sku))
    if other is not None and other != own_id:
        raise Conflict(f"SKU '{sku}' is already used by product {other}.",
                       fields={"sku": [f"Already used by product {other}."]})


def create_product(data: Mapping[str, Any], user: Any) -> Product:
    """Validate and add a product; the caller commits. 422 on bad fields, 409 on a taken SKU,
    403 when ``cost`` is given by a user without :data:`COST` (it then defaults to 0.00)."""
    _check_cost_write(data, user)
    values = _load(ProductIn(), {k: v for k, v in data.items() if k != "custom"})
    _check_category(values.get("category_id"))
    _check_sku_free(values["sku"])
    values["custom"] = custom.validate(ENTITY, data.get("custom"), user)
    product = Product(**values, created_by_id=getattr(user, "id", None))
    db.session.add(product)
    _flush_unique(values["sku"])
    return product


def update_product(product: Product, data: Mapping[str, Any], user: Any) -> Product:
    """Apply a partial change; the caller commits (403 for ``cost`` without :data:`COST`)."""
    _check_cost_write(data, user)
    values = _load(ProductIn(), {k: v for k, v in data.items() if k != "custom"}, partial=True)
    for key in ("sku", "name", "unit", "price"):
        if key in values and values[key] is None:
            raise ValidationError("Invalid product; see fields.", fields={key: ["Field may not be null."]})
    if "category_id" in values:
        _check_category(values["category_id"])
    if "sku" in values:
        _check_sku_free(values["sku"], product.id)
    for key, value in values.items():
        setattr(product, key, value)
    if "custom" in data:
        product.custom = custom.validate(ENTITY, data.get("custom"), user,
                                         existing=product.custom or {}, partial=True)
    _flush_unique(product.sku)
    return product


def _flush_unique(sku: str) -> None:
    with savepoint_or_conflict(f"SKU '{sku}' is already used by another product.",
                               fields={"sku": ["Already used by another product."]}):
        pass  # the flush of the product's pending changes is what a taken SKU refuses


def delete_product(product: Product) -> None:
    """Delete a product nobody references; otherwise 409 (deactivate it instead)."""
    with savepoint_or_conflict(f"Product {product.sku} is used by other records (stock, orders…); "
                               "set it inactive instead of deleting it."):
        db.session.delete(product)


_PRODUCT_OUT: Any = None


def product_dict(product: Product, user: Any) -> dict[str, Any]:
    """The API representation, with the custom values ``user`` may read, and ``cost`` only
    for users with :data:`COST` (absent otherwise)."""
    global _PRODUCT_OUT

    if _PRODUCT_OUT is None:  # building a marshmallow schema costs more than dumping a row
        _PRODUCT_OUT = ProductOut()
    data = dump(_PRODUCT_OUT, product, Product, user)
    data["custom"] = custom.dump(ENTITY, product.custom, user)
    if not can_read_cost(user):
        del data["cost"]
    return data


# ---------------------------------------------------------------------------
# Categories
# ---------------------------------------------------------------------------


def _check_name_free(name: str, own_id: int | None = None) -> None:
    other = db.session.scalar(select(Category.id).where(Category.name == name))
    if other is not None and other != own_id:
        raise Conflict(f"A category named '{name}' already exists (id {other}).",
                       fields={"name": ["Already used by another category."]})


def _check_parent(category_id: int | None, parent_id: int | None) -> None:
    if parent_id is None:
        return
    if db.session.get(Category, parent_id) is None:
        raise ValidationError(f"No category with id {parent_id}.",
                              fields={"parent_id": [f"No category with id {parent_id}."]})
    if category_id is not None and parent_id in category_and_descendants(category_id):
        raise ValidationError("A category cannot be placed under itself or its subcategories.",
                              fields={"parent_id": ["Would create a cycle."]})


def create_category(data: Mapping[str, Any], user: Any) -> Category:
    try:
        values = CategoryIn().load(dict(data))
    except MarshmallowError as err:
        raise ValidationError("Invalid category; see fields.", fields=err.messages) from None
    values["name"] = values["name"].strip()
    _check_name_free(values["name"])
    _check_parent(None, values.get("parent_id"))
    cat = Category(**values, created_by_id=getattr(user, "id", None))
    db.session.add(cat)
    db.session.flush()
    return cat


def update_category(cat: Category, data: Mapping[str, Any]) -> Category:
    try:
        values = CategoryIn().load(dict(data), partial=True)
    except MarshmallowError as err:
        raise ValidationError("Invalid category; see fields.", fields=err.messages) from None
    if "name" in values:
        if values["name"] is None:
            raise ValidationError("Invalid category; see fields.", fields={"name": ["Field may not be null."]})
        values["name"] = values["name"].strip()
        _check_name_free(values["name"], cat.id)
    if "parent_id" in values:
        _check_parent(cat.id, values["parent_id"])
    for key, value in values.items():
        setattr(cat, key, value)
    db.session.flush()
    return cat


def delete_category(cat: Category) -> None:
    used = db.session.scalar(select(Product.id).where(Product.category_id == cat.id).limit(1))
    child = db.session.scalar(select(Category.id).where(Category.parent_id == cat.id).limit(1))
    if used is not None or child is not None:
        what = "products" if used is not None else "subcategories"
        raise Conflict(f"Category '{cat.name}' still has {what}; move them first.")
    db.session.delete(cat)
    db.session.flush()


def category_by_name(name: str, *, create: bool = False, user: Any = None) -> Category | None:
    cat = db.session.scalar(select(Category).where(Category.name == name))
    if cat is None and create:
        cat = Category(name=name, created_by_id=getattr(user, "id", None))
        db.session.add(cat)
        db.session.flush()
    return cat
