"""Inventory: warehouses, stock levels, the movement ledger, reservations and low-stock alerts."""
