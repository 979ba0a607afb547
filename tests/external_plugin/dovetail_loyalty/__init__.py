"""Loyalty points: an external Dovetail plugin used by the core tests."""
