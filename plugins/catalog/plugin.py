"""The catalog plugin: manifest and hook implementations (thin; logic lives in services)."""

from __future__ import annotations

from pathlib import Path

from core import hookimpl
from core.registry import CliCommand, CustomFieldEntity, MenuItem, Permission, PluginManifest


@hookimpl
def plugin_manifest():
    return PluginManifest(
        name="catalog", version="1.0.0",
        description="Products and categories shared by inventory and orders",
        migrations=str(Path(__file__).parent / "migrations" / "versions"))


@hookimpl
def register_models():
    from plugins.catalog.models import MODELS

    return list(MODELS)


@hookimpl
def register_permissions():
    return [
        Permission("catalog.product.read", "See products and categories"),
        Permission("catalog.product.write", "Create, change and delete products and categories"),
        Permission("catalog.product.import", "Import products from CSV/XLSX"),
        Permission("catalog.product.read_cost", "See and set product costs, and what derives from "
                                                "them (stock value at cost, profit)"),
    ]


@hookimpl
def register_blueprints():
    from plugins.catalog.api import categories_blp, products_blp

    return [products_blp, categories_blp]


@hookimpl
def register_web_blueprints():
    from plugins.catalog.web import bp

    return [bp]


@hookimpl
def register_menu_items():
    return [MenuItem("catalog.products", "Products", "catalog_web.products", "catalog.product.read",
                     order=300)]


@hookimpl
def register_commands():
    from plugins.catalog.cli import export_products_cmd, import_products_cmd

    return [CliCommand(import_products_cmd, group="import"),
            CliCommand(export_products_cmd, group="export")]


@hookimpl
def register_custom_field_entities():
    from plugins.catalog.models import Product

    return [CustomFieldEntity("product", Product, "custom", "catalog.product")]


@hookimpl
def populate_demo(scale, seed):
    from plugins.catalog.demo import populate

    populate(scale, seed)
