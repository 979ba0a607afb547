"""REST: ``/api/v1/products`` and ``/api/v1/categories``."""

from __future__ import annotations

import flask
from flask.views import MethodView

from core.api import Blueprint, apply_sort, page_body, page_of, page_schema
from core.api import serialized as _json
from core.auth import permission_required, require
from core.db import db
from core.errors import PermissionDenied
from core.scope import dump, get_for, select_for
from plugins.catalog import services
from plugins.catalog.models import Category, Product
from plugins.catalog.schemas import (
    CategoryArgs,
    CategoryIn,
    CategoryOut,
    CategoryPatch,
    ProductArgs,
    ProductIn,
    ProductOut,
    ProductPatch,
)

products_blp = Blueprint("catalog_products", __name__, url_prefix="/products",
                         description="Products of the catalogue")
categories_blp = Blueprint("catalog_categories", __name__, url_prefix="/categories",
                           description="Product categories")

READ, WRITE = "catalog.product.read", "catalog.product.write"


# Checks the permission before the body is parsed (403 comes before 422).
needs = permission_required



@products_blp.route("")
class ProductsView(MethodView):
    @needs(READ)
    @products_blp.arguments(ProductArgs, location="query")
    @products_blp.response(200, page_schema(ProductOut))
    def get(self, args):
        """List products (search q, category_id, active, custom.<key>)"""
        user = require(READ)
        if (args.get("sort") or "").lstrip("-") == "cost" and not services.can_read_cost(user):
            raise PermissionDenied(f"You need the permission '{services.COST}' to sort by cost.")
        stmt = services.product_filters(select_for(Product, READ, user), args, flask.request.args)
        rows, total = page_of(apply_sort(stmt, Product, args.get("sort"), default="sku"), args)
        return _json(page_body([services.product_dict(p, user) for p in rows], total, args))

    @needs(WRITE)
    @products_blp.arguments(ProductIn)
    @products_blp.response(201, ProductOut)
    def post(self, data):
        """Create a product"""
        user = require(WRITE)
        product = services.create_product(data, user)
        db.session.commit()
        return _json(services.product_dict(product, user), 201)


@products_blp.route("/<int:product_id>")
class ProductView(MethodView):
    @products_blp.response(200, ProductOut)
    def get(self, product_id):
        """One product"""
        user = require(READ)
        return _json(services.product_dict(get_for(Product, product_id, READ, user), user))

    @needs(WRITE)
    @products_blp.arguments(ProductPatch(partial=True))
    @products_blp.response(200, ProductOut)
    def patch(self, data, product_id):
        """Change some fields of a product"""
        user = require(WRITE)
        product = get_for(Product, product_id, WRITE, user)
        services.update_product(product, data, user)
        db.session.commit()
        return _json(services.product_dict(product, user))

    @products_blp.response(204)
    def delete(self, product_id):
        """Delete a product nothing references (otherwise 409: deactivate it)"""
        user = require(WRITE)
        services.delete_product(get_for(Product, product_id, WRITE, user))
        db.session.commit()
        return "", 204


@categories_blp.route("")
class CategoriesView(MethodView):
    @needs(READ)
    @categories_blp.arguments(CategoryArgs, location="query")
    @categories_blp.response(200, page_schema(CategoryOut))
    def get(self, args):
        """List categories (search q, parent_id)"""
        user = require(READ)
        stmt = select_for(Category, READ, user)
        if args.get("q"):
            stmt = stmt.where(Category.name.icontains(args["q"].strip(), autoescape=True))
        if args.get("parent_id") is not None:
            stmt = stmt.where(Category.parent_id == args["parent_id"])
        rows, total = page_of(apply_sort(stmt, Category, args.get("sort"), default="name"), args)
        return _json(page_body(dump(CategoryOut(), rows, Category, user, many=True), total, args))

    @needs(WRITE)
    @categories_blp.arguments(CategoryIn)
    @categories_blp.response(201, CategoryOut)
    def post(self, data):
        """Create a category"""
        user = require(WRITE)
        cat = services.create_category(data, user)
        db.session.commit()
        return _json(dump(CategoryOut(), cat, Category, user), 201)


@categories_blp.route("/<int:category_id>")
class CategoryView(MethodView):
    @categories_blp.response(200, CategoryOut)
    def get(self, category_id):
        """One category"""
        user = require(READ)
        return _json(dump(CategoryOut(), get_for(Category, category_id, READ, user), Category, user))

    @needs(WRITE)
    @categories_blp.arguments(CategoryPatch(partial=True))
    @categories_blp.response(200, CategoryOut)
    def patch(self, data, category_id):
        """Rename or move a category"""
        user = require(WRITE)
        cat = get_for(Category, category_id, WRITE, user)
        services.update_category(cat, data)
        db.session.commit()
        return _json(dump(CategoryOut(), cat, Category, user))

    @categories_blp.response(204)
    def delete(self, category_id):
        """Delete an empty category (409 while it has products or subcategories)"""
        user = require(WRITE)
        services.delete_category(get_for(Category, category_id, WRITE, user))
        db.session.commit()
        return "", 204
