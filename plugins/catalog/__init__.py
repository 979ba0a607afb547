"""Catalog: products and categories, shared by inventory (stock) and orders (lines)."""
